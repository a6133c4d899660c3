"""Only for ``scrapyd-deploy``, which builds the project egg with ``python setup.py bdist_egg``.

Everything (name, version, packages, the ``scrapy`` entry point that tells Scrapyd where the
settings are) is in pyproject.toml; without this file scrapyd-deploy would write its own setup.py,
which packages every folder it finds (tests included) and none of that metadata.
"""

from setuptools import setup

setup()
