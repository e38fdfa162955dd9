"""Signed thinking remembered by tool-call id and put back where each upstream wants it
(calo_addon/translate/signatures.py): Gemini's signature right before its call, Claude's
blocks at the start of the turn, never twice."""

from __future__ import annotations

from calo_addon.translate.neutral import Message, Request, Text, Thinking, ToolCall
from calo_addon.translate.signatures import SignatureMemory, remember_from, restore

CALL = ToolCall("toolu_1", "get_weather", {"city": "Paris"})
OTHER = ToolCall("toolu_2", "get_weather", {"city": "Rome"})
CLAUDE = Thinking("Weather first.", "c2ln")
REDACTED = Thinking(signature="cmVk", redacted=True)
GEMINI = Thinking(signature="Z2Vt", attached=True)


def turn(*parts) -> Request:
    return Request(messages=[Message("user", [Text("hi")]), Message("assistant", list(parts))])


def test_claude_blocks_open_the_turn_again_even_with_text_before_the_call():
    memory = SignatureMemory()
    remember_from([CLAUDE, REDACTED, Text("Let me check."), CALL, OTHER], memory)
    request = turn(Text("Let me check."), CALL, OTHER)  # the client kept OpenAI's fields only
    assert restore(request, memory) == 1
    assert request.messages[1].parts == [CLAUDE, REDACTED, Text("Let me check."), CALL, OTHER]
    assert memory.recall("toolu_2") is None  # the blocks belong to the turn's first call


def test_a_turn_that_kept_its_blocks_is_left_alone():
    memory = SignatureMemory()
    remember_from([CLAUDE, Text("Let me check."), CALL], memory)
    request = turn(CLAUDE, Text("Let me check."), CALL)
    assert restore(request, memory) == 0
    assert request.messages[1].parts == [CLAUDE, Text("Let me check."), CALL]


def test_gemini_signature_goes_right_before_its_call_and_not_onto_text():
    memory = SignatureMemory()
    remember_from([GEMINI, Text("I will look."), CALL], memory)  # signed the text, not the call
    assert memory.recall("toolu_1") is None
    remember_from([Text("I will look."), GEMINI, CALL], memory)
    request = turn(Text("I will look."), CALL)
    assert restore(request, memory) == 1
    assert request.messages[1].parts == [Text("I will look."), GEMINI, CALL]
    again = turn(Text("I will look."), GEMINI, CALL)  # the client kept it
    assert restore(again, memory) == 0 and again.messages[1].parts.count(GEMINI) == 1


def test_restored_blocks_are_copies_and_the_memory_is_bounded_by_size():
    memory = SignatureMemory(max_bytes=1000)
    remember_from([CLAUDE, CALL], memory)
    request = turn(CALL)
    restore(request, memory)
    request.messages[1].parts[0].text = "changed by a writer"
    assert memory.recall("toolu_1") == (CLAUDE,)
    memory.remember("big", [Thinking("x" * 2000, "c2ln")])  # larger than the whole memory
    assert memory.recall("big") is None
    for i in range(50):
        memory.remember(f"call_{i}", [Thinking("y" * 100, "c2ln")])
    assert 0 < len(memory) < 50
