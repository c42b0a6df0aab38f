"""The dashboard served by ``runlab ui`` (FastAPI + Uvicorn: ``pip install 'runlab[ui]'``).

``runlab.web.data`` reads what the pages show from a runs root; ``runlab.web.app`` serves it
with the static front end in ``static/`` (plain HTML, CSS, JavaScript and a vendored uPlot).
"""
