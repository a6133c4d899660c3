"""Watcher rules in one place: which articles a watcher wants, by words and phrases.

- ``model``: the rules as a user writes them (TOML ``[[rule]]`` tables), validated when read;
- ``matching``: what a rule matches in a batch of articles (title, body, PDF text), through the
  same folding as search (``site.text.fold``): every rule match is a search hit for the term;
- ``check``: a rule over the whole archive (``rules check``, ``feed --rule``).

``watch``/``notify`` (monitor/differ.py) route what the rules match; ``cli/rules.py`` is the
``rules check`` command.
"""
