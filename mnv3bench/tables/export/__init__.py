"""One exporter per format, each reading a TableResult: terminal (Rich), Markdown, CSV, JSON, PNG.

`files.write_reports` writes them all under <reports>/<device>/. Each module imports only
what its format needs, so rendering to the terminal loads neither pandas nor matplotlib.
"""
