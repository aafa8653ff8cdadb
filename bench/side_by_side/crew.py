"""The CrewAI side: a crew (researcher, writer, editor) turns each feed item into an article.

Runs inside the benchmark's own CrewAI virtualenv (build/bench-crewai), never
the project's; bench/side_by_side/run.py starts it:

    build/bench-crewai/bin/python bench/side_by_side/crew.py \
        --items bench/side_by_side/items.json --base-url http://127.0.0.1:PORT/v1 --words 300 --out articles.json

The model is the counting server on 127.0.0.1 (OpenAI-compatible, dummy key).
Telemetry and tracing are off, and any connection that is not to 127.0.0.1
goes to a dead proxy, so the run never reaches the network.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "OTEL_SDK_DISABLED": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}
for _k, _v in OFFLINE_ENV.items():  # before crewai is imported: it reads them at import
    os.environ[_k] = _v

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ARTICLE_CHARS = 3_000  # agents.research.PROMPT_CONTENT_CHARS (this venv does not have selfpub)


def build_crew(base_url: str, words: int):  # noqa: ANN201
    """Three agents, three sequential tasks; the item comes in as kickoff inputs."""
    from crewai import LLM, Agent, Crew, Process, Task

    llm = LLM(model="openai/bench-model", base_url=base_url, api_key="sk-bench-dummy", temperature=0)
    researcher = Agent(
        role="Researcher",
        goal="Find the facts in a news item that matter to developers, each with the URL it comes from",
        backstory="You research developer news for a technical blog. You only use facts stated in the item.",
        llm=llm, allow_delegation=False, verbose=False,
    )
    writer = Agent(
        role="Writer",
        goal=f"Write a clear technical article of at least {words} words for Dev.to",
        backstory="You are a careful technical writer. You cite every source as a markdown link.",
        llm=llm, allow_delegation=False, verbose=False,
    )
    editor = Agent(
        role="Editor",
        goal="Make the article accurate, well cited and ready to publish",
        backstory="You are a strict editor. Every claim must be supported by the research notes.",
        llm=llm, allow_delegation=False, verbose=False,
    )
    research = Task(
        description=(
            "Research this feed item and list its key facts, each with the URL it comes from.\n\n"
            "Title: {title}\nURL: {url}\nSummary: {summary}\nArticle: {article}"
        ),
        expected_output="A topic line, an angle, and key points as '- claim (source: url)'.",
        agent=researcher,
    )
    write = Task(
        description="Write a Dev.to article from the research notes. Cite each source as a markdown link [label](url).",
        expected_output=f"A markdown article of at least {words} words with a title.",
        agent=writer, context=[research],
    )
    edit = Task(
        description=(
            "Edit the article: check every claim against the research notes, fix what is wrong, keep the "
            "citations. Return the full edited article."
        ),
        expected_output=f"The final markdown article, at least {words} words.",
        agent=editor, context=[research, write],
    )
    return Crew(agents=[researcher, writer, editor], tasks=[research, write, edit], process=Process.sequential,
                verbose=False, memory=False)


def main() -> int:
    """Run the crew once per item; write [{url, article}] as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", required=True)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--words", type=int, default=300)
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=0, help="only the first N items")
    args = ap.parse_args()
    with open(args.items, encoding="utf-8") as f:
        items = json.load(f)
    if args.limit:
        items = items[: args.limit]
    import crewai

    crew = build_crew(args.base_url, args.words)
    out, t0 = [], time.perf_counter()
    for it in items:
        # the article's text as the page gives it, capped as the other sides cap it (3,000 characters)
        article = " ".join(it.get("content", "").split())[:ARTICLE_CHARS]
        result = crew.kickoff(inputs={"title": it["title"], "url": it["url"], "summary": it["summary"],
                                      "article": article})
        out.append({"url": it["url"], "article": result.raw})
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"crewai": crewai.__version__, "seconds": time.perf_counter() - t0, "articles": out}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
