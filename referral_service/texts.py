"""Messages the layers below the edges word for people, kept translatable.

A service (an adapter, a schema's validator) words an error as
`N_("Unknown city '%(city)s'.", city=city)`: a `Text`, which is the English message itself
(a `str`: the API's problem+json, the CLI and the logs show it as before) and also keeps its
template and parameters, so that the portal writes it in the user's language
(`portal/forms.said`: the template through gettext, then the parameters). `N_` is one of
pybabel's default keywords; babel.cfg's entry for portal/forms.py extracts the `N_` texts of
services/, adapters/ and schemas/ with it (`extract_with_service_texts`), so the README's
extract command puts them in the portal's catalogues. No Flask here: services, adapters and
schemas import this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Where the texts the portal shows are worded, besides the portal itself.
WORDED_IN = ("services", "adapters", "schemas")


class Text(str):
    """An English message that remembers its template and parameters, for translation."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Text:
        """Return `template % params` (the template as it is without parameters)."""
        text = super().__new__(cls, template % params if params else template)
        text.template = template
        text.params = params
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (a worker's cache, a test's copy) with its template and parameters.
        return _rebuilt, (self.template, self.params)


def _rebuilt(template: str, params: dict[str, Any]) -> Text:
    return Text(template, **params)


N_ = Text  # the marker pybabel looks for, and the constructor


def extract_with_service_texts(
    fileobj: Any, keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str, Any, list[str]]]:
    """pybabel extraction method (babel.cfg): the file's own messages, as Python, then the
    `N_` texts of every module in WORDED_IN, so that the README's extract command (over
    portal/ only) finds the service layer's texts the portal shows."""
    from babel.messages.extract import extract_python

    yield from extract_python(fileobj, keywords, comment_tags, options)
    package = Path(__file__).resolve().parent
    paths = sorted(path for folder in WORDED_IN for path in (package / folder).rglob("*.py"))
    for path in paths:
        with open(path, "rb") as source:
            yield from extract_python(source, {"N_": None}, comment_tags, options)
