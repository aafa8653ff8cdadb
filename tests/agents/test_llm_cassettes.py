"""Prompt/parse tests replayed from vcrpy cassettes recorded from the real embedded model.

The cassette holds request bodies and response bodies only: no Authorization,
no SDK/OS fingerprint headers, no dates or request ids. Replays match on
method, path and body, so the recording server's port does not matter.
Re-record: `pytest -m real_llm tests/agents/test_llm_cassettes.py` (it checks the
live model still answers what the cassette says, temperature 0, seed 0).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import openai
import pytest
import vcr
import yaml
from pydantic import BaseModel

from agents.llm.embedded import embedded_json_modes, resolve_embedded
from agents.llm import MeteredLLM, cost
from config.settings import EMBEDDED_MODEL, AgentsSettings, Settings

CASSETTES = Path(__file__).parent / "cassettes"
CASSETTE = "embedded_smollm2.yaml"
REPLAY_URL = "http://embedded.test/v1"
PRICE = Settings().prices[EMBEDDED_MODEL]
KEEP_RESPONSE_HEADERS = {"content-type"}


class Pet(BaseModel):
    name: str
    species: str


def _clean_request(request):  # noqa: ANN001, ANN202
    request.headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
    request.uri = REPLAY_URL.rsplit("/v1", 1)[0] + request.path
    return request


def _clean_response(response):  # noqa: ANN001, ANN202
    response["headers"] = {k: v for k, v in response["headers"].items() if k.lower() in KEEP_RESPONSE_HEADERS}
    return response


def recorder(directory: Path, mode: str) -> vcr.VCR:
    """A VCR that strips secrets and volatile headers and matches on method, path and body."""
    return vcr.VCR(
        cassette_library_dir=str(directory),
        record_mode=mode,
        match_on=["method", "path", "body"],
        before_record_request=_clean_request,
        before_record_response=_clean_response,
        decode_compressed_response=True,
    )


async def scenario(base_url: str, budget, call_log) -> list:  # noqa: ANN001
    """The recorded conversation: one plain prompt and one structured one."""
    agents = resolve_embedded(AgentsSettings(), base_url)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-no-key", max_retries=0)
    llm = MeteredLLM(agents, {EMBEDDED_MODEL: PRICE}, budget, {base_url: client}, json_modes=embedded_json_modes(base_url), log_to=call_log, seed=0)
    plain = await llm.complete("writer", [{"role": "user", "content": "Write a one-line title about otters."}], max_tokens=24)
    pet = await llm.complete(
        "research", [{"role": "user", "content": "Describe a pet as JSON with the keys name and species."}],
        response_model=Pet, max_tokens=64,
    )
    return [plain, pet]


async def test_prompts_replay_from_the_cassette_without_a_server(budget, call_log) -> None:
    if not (CASSETTES / CASSETTE).exists():
        pytest.fail(f"missing cassette {CASSETTE}: record it with pytest -m real_llm {__file__}")
    with recorder(CASSETTES, "none").use_cassette(CASSETTE) as cassette:
        plain, pet = await scenario(REPLAY_URL, budget, call_log)
    assert cassette.all_played
    assert plain.text.strip() and plain.usage.output_tokens <= 24
    assert isinstance(pet.parsed, Pet)
    assert budget.journal.balance("expenses:compute") == sum(
        cost(PRICE, c.usage.input_tokens, c.usage.output_tokens) for c in (plain, pet)
    )


def test_the_cassette_holds_no_secret_or_volatile_header() -> None:
    text = (CASSETTES / CASSETTE).read_text()
    data = yaml.safe_load(text)
    for i in data["interactions"]:
        assert set(k.lower() for k in i["request"]["headers"]) <= {"content-type"}
        assert set(k.lower() for k in i["response"]["headers"]) <= KEEP_RESPONSE_HEADERS
        assert i["request"]["uri"].startswith("http://embedded.test/")
    for needle in ("sk-no-key", "authorization", "x-request-id", "x-stainless", "date:"):
        assert needle not in text.lower()


@pytest.mark.real_llm
async def test_the_cassette_matches_the_live_embedded_model(embedded_server, budget, call_log, tmp_path) -> None:
    with recorder(tmp_path, "all").use_cassette(CASSETTE):
        live = await scenario(embedded_server.base_url, budget, call_log)
    target = CASSETTES / CASSETTE
    if not target.exists():  # first recording
        shutil.copy(tmp_path / CASSETTE, target)
    recorded = yaml.safe_load(target.read_text())["interactions"]
    fresh = yaml.safe_load((tmp_path / CASSETTE).read_text())["interactions"]
    assert [i["request"]["body"] for i in fresh] == [i["request"]["body"] for i in recorded]
    texts = [yaml.safe_load(i["response"]["body"]["string"])["choices"][0]["message"]["content"] for i in recorded]
    assert [c.text for c in live] == texts
