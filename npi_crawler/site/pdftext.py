"""PDF text: the only module that imports pypdf. Bytes of a PDF in, its text layer out.

The spider fetches the PDFs articles link to (spiders/pdfs.py), so robots.txt, throttling,
retries and the offsite filter apply to them as to pages; ``pipelines.PdfTextPipeline`` calls
``extract_text`` and stores the result. A broken, encrypted or text-less PDF is a warning of the
run, never a failed run.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from pypdf import PdfReader

from npi_crawler.items import BROKEN, ENCRYPTED, NO_TEXT, OK
from npi_crawler.site.text import clean_text

logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns about every odd object it meets


@dataclass
class Extracted:
    status: str  # ok, no_text, broken or encrypted
    text: str | None
    pages: int | None
    error: str | None = None


def extract_text(data: bytes) -> Extracted:
    """The text layer of a PDF, page after page. Never raises: a file pypdf cannot read is
    ``broken``, one that needs a password ``encrypted``, one without any text ``no_text``."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # e.g. AES without the optional crypto library
                return Extracted(ENCRYPTED, None, None, f"encrypted ({exc})")
            if not opened:
                return Extracted(ENCRYPTED, None, None, "encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types on damaged files
        return Extracted(BROKEN, None, None, f"{type(exc).__name__}: {exc}"[:500])
    # A PDF's text layer is the site's text too: no terminal controls, nothing XML refuses.
    pages = [" ".join(clean_text(page).split()) for page in pages]
    text = "\n\n".join(page for page in pages if page)
    if not text:
        return Extracted(NO_TEXT, None, len(pages), "no text layer (a scanned PDF?)")
    return Extracted(OK, text, len(pages))
