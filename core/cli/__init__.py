"""The command line, `python -m core <command>`: the same engine as the app, headless."""
