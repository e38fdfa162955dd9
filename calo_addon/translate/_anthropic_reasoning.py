"""Anthropic thinking settings <-> neutral Reasoning, and the max_tokens they constrain.

Anthropic says it three ways: `thinking: {type: enabled, budget_tokens}` (a token budget),
`{type: adaptive}` (the model decides; newer models) and `{type: disabled}`, plus
`output_config.effort` (low ... max). The neutral form keeps a budget, an effort and an on/off;
what only Anthropic has (adaptive, the display setting, the effort word as sent) rides in
`Request.extra` so an Anthropic upstream gets the client's own setting back.
"""

from __future__ import annotations

from typing import Any

from . import neutral

DEFAULT_MAX_TOKENS = 8192  # Anthropic requires max_tokens; every current Claude model takes this
MIN_BUDGET = 1024  # Anthropic's smallest thinking budget
# Anthropic effort words -> neutral levels (the neutral scale stops at high).
_EFFORT_IN = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
_EFFORT_IN |= {"xhigh": "high", "max": "high"}


def read_reasoning(
    thinking: Any, output_config: dict[str, Any], extra: dict[str, Any]
) -> neutral.Reasoning | None:
    effort = _read_effort(output_config.get("effort"), extra)
    if thinking is None:
        return neutral.Reasoning(effort=effort) if effort else None
    if not isinstance(thinking, dict):
        raise neutral.TranslationError("thinking must be an object", "thinking")
    kind = thinking.get("type")
    display = thinking.get("display")
    if display:
        extra["anthropic_display"] = display
    include = display != "omitted"
    if kind == "disabled":
        return neutral.Reasoning(effort=effort, enabled=False)
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise neutral.TranslationError("thinking.budget_tokens must be an integer", "thinking")
        return neutral.Reasoning(effort, budget, True, include)
    if not isinstance(kind, str):
        raise neutral.TranslationError("thinking needs a type", "thinking.type")
    extra["anthropic_thinking"] = kind  # adaptive (or a newer kind): the model decides
    return neutral.Reasoning(effort=effort, enabled=True, include_thoughts=include)


def _read_effort(effort: Any, extra: dict[str, Any]) -> Any:
    if effort is None:
        return None
    if effort not in _EFFORT_IN:
        raise neutral.TranslationError(f"unknown effort {effort!r}", "output_config.effort")
    extra["anthropic_effort"] = effort
    return _EFFORT_IN[effort]


def write_reasoning(
    request: neutral.Request, forced_tool: bool
) -> tuple[dict[str, Any] | None, str | None, int]:
    """(thinking, output_config.effort, max_tokens) for an Anthropic body.

    Anthropic refuses thinking together with a forced tool choice; the forced tool is what
    the client's answer depends on, so thinking is left out then. The effort word goes to
    output_config only when an Anthropic client sent it; other protocols' efforts become a
    thinking budget (`neutral.budget_for`).
    """
    thinking = _thinking(request.reasoning, request.extra)
    max_tokens = request.max_tokens
    if thinking is not None and forced_tool and thinking["type"] != "disabled":
        thinking = None
    if thinking is not None and thinking["type"] == "enabled":
        thinking["budget_tokens"], max_tokens = fit_budget(thinking["budget_tokens"], max_tokens)
    return thinking, request.extra.get("anthropic_effort"), max_tokens or DEFAULT_MAX_TOKENS


def _thinking(reasoning: neutral.Reasoning | None, extra: dict[str, Any]) -> dict[str, Any] | None:
    if reasoning is None:
        return None
    if reasoning.enabled is False or reasoning.budget_tokens == 0:
        return {"type": "disabled"}
    if reasoning.budget_tokens:
        out: dict[str, Any] = {"type": "enabled", "budget_tokens": reasoning.budget_tokens}
    elif extra.get("anthropic_thinking"):
        out = {"type": extra["anthropic_thinking"]}
    elif reasoning.enabled is None and ("anthropic_effort" in extra or reasoning.effort is None):
        return None  # an effort alone (output_config.effort), not a request to think
    else:
        out = {"type": "enabled", "budget_tokens": neutral.budget_for(reasoning.effort or "medium")}
    if extra.get("anthropic_display"):
        out["display"] = extra["anthropic_display"]
    return out


def fit_budget(budget: int, max_tokens: int | None) -> tuple[int, int]:
    """(budget, max_tokens) as Anthropic accepts them: 1024 <= budget < max_tokens.

    max_tokens caps thinking and answer together, as the client's cap does in every protocol,
    so a budget that does not fit is lowered to half the cap, leaving the other half for the
    answer. Only when even that is under 1024 is max_tokens raised (to 1024 more than asked):
    a slightly longer answer beats a refused request. Without a cap, the answer gets
    DEFAULT_MAX_TOKENS beside the budget.
    """
    budget = max(budget, MIN_BUDGET)
    if max_tokens is None:
        return budget, budget + DEFAULT_MAX_TOKENS
    if budget < max_tokens:
        return budget, max_tokens
    if max_tokens // 2 >= MIN_BUDGET:
        return max_tokens // 2, max_tokens
    return MIN_BUDGET, MIN_BUDGET + max_tokens
