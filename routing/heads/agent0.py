"""agent0: the local LLM as a generalist. Trusted for chat; unverified elsewhere."""

from __future__ import annotations

import re
import time

from routing.heads.base import Ballot, Head, HeadContext
from routing.heads.code import is_code_request
from routing.stubguard import stub_marker

SYSTEM_PROMPT = "You are Swarm, a concise and helpful assistant. Answer in a few sentences."

_CHAT = re.compile(
    r"^\s*(hi|hii+|hello|hey|howdy|yo|greetings|good (morning|afternoon|evening|night)|"
    r"how are you( doing)?|how's it going|what's up|sup|who are you|what are you|what is your name|"
    r"what's your name|nice to meet you|tell me a joke|tell me about yourself|bye|goodbye|see you)"
    r"(\s+(there|swarm|friend|everyone|all))?\s*[!?.]*\s*$",
    re.I,
)

CHAT_CONFIDENCE = 0.8  # small talk has no wrong answer, only a rude or empty one
UNVERIFIED_CONFIDENCE = 0.45  # a 135M model's unchecked claim: below the floor unless others agree


def is_chat(prompt: str) -> bool:
    return bool(_CHAT.match(prompt))


class Agent0Head(Head):
    name = "agent0"
    skill_type = "agent0"
    timeout_s = 30.0

    def applies(self, prompt: str) -> bool:
        return not is_code_request(prompt)  # the code head asks the same model, and tests what it writes

    def answer(self, prompt: str, ctx: HeadContext) -> Ballot:
        started = time.perf_counter()
        if ctx.generate is None:
            return self.abstain(started, "no local model")
        chat = is_chat(prompt)
        # Small talk is agent0's to answer, so its tokens can go to the client as they come.
        generate = ctx.stream if chat and ctx.stream else ctx.generate
        gen = generate(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            max_tokens=ctx.max_tokens,
            temperature=ctx.temperature,
        )
        confidence = CHAT_CONFIDENCE if chat else UNVERIFIED_CONFIDENCE
        if not gen.text or stub_marker(gen.text):
            confidence = 0.0
        elif gen.finish_reason == "length" and not chat:
            confidence *= 0.8
        return self.ballot(
            gen.text,
            confidence,
            started,
            chat=chat,
            streamed=generate is ctx.stream,
            finish_reason=gen.finish_reason,
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
        )
