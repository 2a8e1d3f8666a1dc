"""``python -m lexigram.ai.llm``: the command line."""

from lexigram.ai.llm.cli import main

raise SystemExit(main())
