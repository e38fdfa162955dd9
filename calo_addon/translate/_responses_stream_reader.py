"""An upstream's Responses stream events -> neutral events, as they come."""

from __future__ import annotations

from typing import Any

from . import neutral
from ._responses_answer import read_usage, stop_reason_of
from ._responses_content import read_reasoning
from ._responses_custom import input_fragment


class ResponsesStreamReader:
    """An upstream's Responses stream events -> neutral events, as they come."""

    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._next_index = 0
        self._open: tuple[str, int] | None = None  # (item kind, neutral index)
        self._streamed = False  # the open part got content through deltas
        self._summaries = 0
        self._saw_call = False
        self._refused = False

    def feed(self, event_type: str | None, data: Any) -> list[neutral.Event]:
        if not isinstance(data, dict) or self._ended:
            return []
        kind = data.get("type") or event_type or ""
        handler = _READER_HANDLERS.get(kind)
        if handler is None:
            return []
        out = [] if self._started or kind in _LIFECYCLE else self._on_lifecycle({})
        return out + handler(self, data)

    def close(self) -> list[neutral.Event]:
        if self._ended:
            return []
        self._ended = True
        stop: neutral.StopReason = "tool_use" if self._saw_call else "end_turn"
        return self._stop_part() + [neutral.MessageStop(stop)]

    # ------------------------------------------------------------ parts

    def _start_part(
        self, kind: str, part: neutral.Text | neutral.Thinking | neutral.ToolCall
    ) -> list[neutral.Event]:
        out = self._stop_part()
        index, self._next_index = self._next_index, self._next_index + 1
        self._open, self._streamed, self._summaries = (kind, index), False, 0
        return out + [neutral.PartStart(index, part)]

    def _stop_part(self) -> list[neutral.Event]:
        if self._open is None:
            return []
        (kind, index), self._open = self._open, None
        # a custom call's input streams inside the JSON text {"input": "..."}: close it
        closing: list[neutral.Event] = []
        if kind == "custom_tool_call":
            closing.append(neutral.PartDelta(index, arguments='"}'))
        return closing + [neutral.PartStop(index)]

    def _delta(self, kind: str, **content: str) -> list[neutral.Event]:
        if self._open is None or self._open[0] != kind or not any(content.values()):
            return []
        self._streamed = True
        return [neutral.PartDelta(self._open[1], **content)]

    # ------------------------------------------------------------ handlers

    def _on_lifecycle(self, data: dict[str, Any]) -> list[neutral.Event]:
        if self._started:
            return []
        self._started = True
        answer = data.get("response") or {}
        return [
            neutral.MessageStart(
                answer.get("id") or "", answer.get("model"), read_usage(answer.get("usage"))
            )
        ]

    def _on_item_added(self, data: dict[str, Any]) -> list[neutral.Event]:
        item = data.get("item") or {}
        kind = item.get("type")
        if kind == "reasoning":
            return self._start_part("reasoning", neutral.Thinking())
        if kind in ("function_call", "custom_tool_call"):
            self._saw_call = True
            custom = kind == "custom_tool_call"
            call = neutral.ToolCall(
                item.get("call_id") or neutral.new_call_id(), item.get("name") or ""
            )
            if custom:
                call.tool_kind = "custom"
            out = self._start_part(kind, call)
            if custom:  # its input streams inside the JSON text {"input": "..."}: open it
                out.append(neutral.PartDelta(self._next_index - 1, arguments='{"input": "'))
            return out
        return []

    def _on_content_added(self, data: dict[str, Any]) -> list[neutral.Event]:
        part = data.get("part") or {"type": "output_text"}
        if part.get("type") not in ("output_text", "refusal"):
            return []
        self._refused = self._refused or part.get("type") == "refusal"
        out = self._start_part("message", neutral.Text(""))
        return out + self._delta("message", text=part.get("text") or part.get("refusal") or "")

    def _on_text_delta(self, data: dict[str, Any]) -> list[neutral.Event]:
        """Text deltas whose content part was never announced still open a text part."""
        opened = [] if self._open and self._open[0] == "message" else self._on_content_added({})
        return opened + self._delta("message", text=data.get("delta") or "")

    def _on_content_done(self, data: dict[str, Any]) -> list[neutral.Event]:
        part = data.get("part") or {}
        if self._open is None or self._open[0] != "message":
            return []
        out = (
            []
            if self._streamed
            else self._delta("message", text=part.get("text") or part.get("refusal") or "")
        )
        return out + self._stop_part()

    def _on_summary_part(self, data: dict[str, Any]) -> list[neutral.Event]:
        self._summaries += 1
        joiner = "\n\n" if self._summaries > 1 else ""
        return self._delta(
            "reasoning", thinking=joiner + ((data.get("part") or {}).get("text") or "")
        )

    def _on_thinking_delta(self, data: dict[str, Any]) -> list[neutral.Event]:
        return self._delta("reasoning", thinking=data.get("delta") or "")

    def _on_arguments_delta(self, data: dict[str, Any]) -> list[neutral.Event]:
        return self._delta("function_call", arguments=data.get("delta") or "")

    def _on_input_delta(self, data: dict[str, Any]) -> list[neutral.Event]:
        return self._delta("custom_tool_call", arguments=input_fragment(data.get("delta") or ""))

    def _on_item_done(self, data: dict[str, Any]) -> list[neutral.Event]:
        item = data.get("item") or {}
        kind = item.get("type")
        if self._open is None or self._open[0] != kind:
            return self._stop_part() if kind == "message" else []
        out: list[neutral.Event] = []
        if kind == "reasoning":
            if not self._streamed:
                out += self._delta("reasoning", thinking=read_reasoning(item).text)
            if item.get("encrypted_content"):
                out += [neutral.PartDelta(self._open[1], signature=item["encrypted_content"])]
        elif kind == "function_call" and not self._streamed:
            out += self._delta("function_call", arguments=item.get("arguments") or "")
        elif kind == "custom_tool_call" and not self._streamed:
            out += self._delta(
                "custom_tool_call", arguments=input_fragment(item.get("input") or "")
            )
        return out + self._stop_part()

    def _on_end(self, data: dict[str, Any]) -> list[neutral.Event]:
        self._ended = True
        answer = data.get("response") or {}
        out = self._stop_part()
        if answer.get("status") == "failed" or data.get("type") == "response.failed":
            return out + [_stream_error(answer.get("error") or {})]
        stop = stop_reason_of(answer, called=self._saw_call, refused=self._refused)
        return out + [neutral.MessageStop(stop, read_usage(answer.get("usage")))]

    def _on_error(self, data: dict[str, Any]) -> list[neutral.Event]:
        self._ended = True
        error = data.get("error")
        return self._stop_part() + [_stream_error(error if isinstance(error, dict) else data)]


_ERROR_STATUS = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "invalid_request_error": 400,
}
_LIFECYCLE = ("response.created", "response.queued", "response.in_progress")


def _stream_error(error: dict[str, Any]) -> neutral.StreamError:
    """An error event or a failed answer's error -> StreamError with the status it means."""
    code = error.get("code") or error.get("type")
    status = _ERROR_STATUS.get(code, 500) if isinstance(code, str) else 500
    return neutral.StreamError(status, error.get("message") or "the upstream stream failed", code)


_READER_HANDLERS = {
    "response.created": ResponsesStreamReader._on_lifecycle,
    "response.queued": ResponsesStreamReader._on_lifecycle,
    "response.in_progress": ResponsesStreamReader._on_lifecycle,
    "response.output_item.added": ResponsesStreamReader._on_item_added,
    "response.content_part.added": ResponsesStreamReader._on_content_added,
    "response.output_text.delta": ResponsesStreamReader._on_text_delta,
    "response.refusal.delta": ResponsesStreamReader._on_text_delta,
    "response.content_part.done": ResponsesStreamReader._on_content_done,
    "response.reasoning_summary_part.added": ResponsesStreamReader._on_summary_part,
    "response.reasoning_summary_text.delta": ResponsesStreamReader._on_thinking_delta,
    "response.reasoning_text.delta": ResponsesStreamReader._on_thinking_delta,
    "response.function_call_arguments.delta": ResponsesStreamReader._on_arguments_delta,
    "response.custom_tool_call_input.delta": ResponsesStreamReader._on_input_delta,
    "response.output_item.done": ResponsesStreamReader._on_item_done,
    "response.completed": ResponsesStreamReader._on_end,
    "response.incomplete": ResponsesStreamReader._on_end,
    "response.failed": ResponsesStreamReader._on_end,
    "error": ResponsesStreamReader._on_error,
}
