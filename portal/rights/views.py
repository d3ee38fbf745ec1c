"""The patron's copy of their data, receipts of their decisions (with their inclusion proofs
in the ledger), the public verify page, the library's published keys (/.well-known/jwks.json),
the ledger's signed checkpoints and the history of every privacy notice. Downloads are
attachments, never cached, and no card number is ever in a URL."""

from __future__ import annotations

import json

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.catalog.policy import choice_title
from portal.catalog.services import published_catalog
from portal.clock import utcnow
from portal.consent.reads import privacy_overview
from portal.i18n import current_locale
from portal.ledger import checkpoints
from portal.ledger.merkle import CHECKPOINT_LOG
from portal.ledger.services import entries
from portal.patrons.access import require_patron
from portal.rights import proofs, services
from portal.rights.keys import ReceiptKeys, ReceiptKeysError, load_keys
from portal.rights.policy import MAX_RECEIPT_BYTES, receipt_claims
from portal.web.paths import KEY, LOCALE, REFERENCE, REVISION, SIZE
from portal.web.rendering import render
from portal.web.requests import plain_text, settings_of

DOWNLOAD_HEADERS = {"cache-control": "no-store"}


def _attachment(body: str, filename: str, media_type: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={**DOWNLOAD_HEADERS, "content-disposition": f'attachment; filename="{filename}"'},
    )


def _keys(request: Request) -> ReceiptKeys | None:
    try:
        return load_keys(settings_of(request))
    except ReceiptKeysError:
        return None


# --- a copy of everything kept -------------------------------------------------------------


async def _export(request: Request) -> dict[str, object]:
    patron = require_patron(request)
    return await services.export_patron(patron.patron_id, current_locale(), now=utcnow())


async def export_page(request: Request) -> Response:
    patron = require_patron(request)
    locale = current_locale()
    catalog = await published_catalog()
    titles = {
        service.id: choice_title(notice.texts)
        for service in catalog.services
        if (notice := catalog.notice(service.id, locale))
    }
    store_titles = {
        service.store: titles[service.id]
        for service in catalog.services
        if service.store and service.id in titles
    }
    overview = await privacy_overview(patron.patron_id, locale)
    return render(
        request,
        "rights/export.html",
        {
            "data": await _export(request),
            "services": overview.services,
            "events": await entries(patron.patron_id),
            "titles": titles,
            "store_titles": store_titles,
        },
    )


async def export_download(request: Request) -> Response:
    body = json.dumps(await _export(request), ensure_ascii=False, indent=2)
    return _attachment(body, "my-library-privacy-data.json", "application/json")


# --- receipts ------------------------------------------------------------------------------


async def _signed(request: Request) -> tuple[dict[str, object], str, int] | None:
    patron = require_patron(request)
    public_url = settings_of(request).public_url

    def notice_url(key: str, revision: int, locale: str, for_children: bool) -> str:
        # Signed: the configured address, never the request's Host (development mode
        # without one aside, where any host is served).
        params = {"key": key, "revision": revision, "locale": locale}
        url = (
            request.app.url_path_for("rights.notice_version", **params).make_absolute_url(
                public_url
            )
            if public_url
            else request.url_for("rights.notice_version", **params)
        )
        return str(url.include_query_params(**{"for": "children"}) if for_children else url)

    facts = await services.receipt_facts(
        patron.patron_id,
        request.path_params["reference"],
        secret=settings_of(request).secret_key,
        notice_url=notice_url,
    )
    if facts is None:
        raise HTTPException(status_code=404)
    keys = _keys(request)
    if keys is None:
        return None
    claims = receipt_claims(facts, issued_at=utcnow())
    return claims, services.sign_receipt(claims, keys), facts.event_id


async def _notice_words(claims: dict[str, object]) -> services.NoticeWords | None:
    notice = claims.get("notice")
    if not isinstance(notice, dict):
        return None
    return await services.receipt_notice_words(notice.get("version_id"), notice.get("sha256"))


def _unavailable(request: Request) -> Response:
    return render(request, "rights/unavailable.html", status_code=503)


async def receipt_page(request: Request) -> Response:
    signed = await _signed(request)
    if signed is None:
        return _unavailable(request)
    claims, token, event_id = signed
    inclusion = await checkpoints.inclusion(event_id)
    return render(
        request,
        "rights/receipt.html",
        {
            "claims": claims,
            "words": await _notice_words(claims),
            "token": token,
            "reference": request.path_params["reference"],
            "inclusion": inclusion,
            "proof": _proof_text(inclusion) if inclusion else "",
        },
    )


def _proof_text(inclusion: checkpoints.Inclusion) -> str:
    return json.dumps(inclusion.bundle(), ensure_ascii=False, indent=2)


async def receipt_proof(request: Request) -> Response:
    """The decision's inclusion proof against the newest checkpoint, as a file."""
    signed = await _signed(request)
    if signed is None:
        return _unavailable(request)
    inclusion = await checkpoints.inclusion(signed[2])
    if inclusion is None:
        raise HTTPException(status_code=404)
    body = _proof_text(inclusion) + "\n"
    return _attachment(body, "consent-receipt-proof.json", "application/json")


async def receipt_download(request: Request) -> Response:
    signed = await _signed(request)
    if signed is None:
        return _unavailable(request)
    return _attachment(signed[1] + "\n", "consent-receipt.jws", "application/jose")


async def verify_form(request: Request) -> Response:
    return render(request, "rights/verify.html", {"result": None, "pasted": "", "proof_pasted": ""})


MAX_PROOF_CHARACTERS = 4 * MAX_RECEIPT_BYTES  # a proof is a leaf, a few dozen hashes, a JWS


async def verify(request: Request) -> Response:
    async with request.form(max_files=1, max_fields=5) as form:
        pasted = form.get("receipt")
        upload = form.get("file")
        token = pasted if isinstance(pasted, str) else ""
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read(MAX_RECEIPT_BYTES + 1)
            token = content.decode("utf-8", errors="replace")
        proof_field = form.get("proof")
        proof_text = proof_field if isinstance(proof_field, str) else ""
    token = plain_text(token)[: MAX_RECEIPT_BYTES + 1]
    proof_text = proof_text[: MAX_PROOF_CHARACTERS + 1]
    keys = _keys(request)
    if keys is None:
        return _unavailable(request)
    result = services.verify_receipt(token, keys.public)
    words = await _notice_words(result.claims) if result.valid and result.claims else None
    proof = (
        proofs.check_proof(proof_text, keys.public, result.claims)
        if result.valid and proof_text.strip()
        else None
    )
    return render(
        request,
        "rights/verify.html",
        {
            "result": result,
            "words": words,
            "proof": proof,
            "pasted": token if len(token) <= MAX_RECEIPT_BYTES else "",
            "proof_pasted": proof_text if len(proof_text) <= MAX_PROOF_CHARACTERS else "",
        },
    )


async def jwks(request: Request) -> Response:
    keys = _keys(request)
    return JSONResponse(
        keys.public_jwks() if keys else {"keys": []},
        media_type="application/jwk-set+json",
    )


# --- the ledger's signed checkpoints -------------------------------------------------------


def _checkpoint_json(request: Request, checkpoint: checkpoints.Checkpoint) -> dict[str, object]:
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "time": checkpoint.made_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "previous_size": checkpoint.previous_size,
        "consistency_proof": list(checkpoint.consistency),
        "signed": checkpoint.signature,
        "url": str(request.app.url_path_for("rights.checkpoint", size=checkpoint.tree_size)),
    }


def _wants_json(request: Request) -> bool:
    return request.query_params.get("format") == "json"


async def checkpoint_list(request: Request) -> Response:
    listed = list(reversed(await checkpoints.checkpoints()))  # newest first
    if _wants_json(request):
        return JSONResponse(
            {
                "log": CHECKPOINT_LOG,
                "keys": str(request.app.url_path_for("rights.jwks")),
                "checkpoints": [_checkpoint_json(request, item) for item in listed],
            }
        )
    return render(request, "rights/checkpoints.html", {"checkpoints": listed})


async def checkpoint_page(request: Request) -> Response:
    found = await checkpoints.checkpoint(request.path_params["size"])
    if found is None:
        raise HTTPException(status_code=404)
    if _wants_json(request):
        return JSONResponse({"log": CHECKPOINT_LOG, **_checkpoint_json(request, found)})
    return render(request, "rights/checkpoint.html", {"checkpoint": found})


# --- the history of each privacy notice ----------------------------------------------------


async def notices(request: Request) -> Response:
    catalog = await published_catalog()
    locale = current_locale()
    listed = [
        (service.key, notice.texts["title"])
        for service in catalog.services
        if (notice := catalog.notice(service.id, locale))
    ]
    return render(request, "rights/notices.html", {"listed": listed})


async def notice_history(request: Request) -> Response:
    history = await services.notice_history(request.path_params["key"])
    if history is None:
        raise HTTPException(status_code=404)
    return render(request, "rights/history.html", {"history": history})


async def notice_version(request: Request) -> Response:
    params = request.path_params
    shown = await services.shown_version(
        params["key"],
        params["revision"],
        params["locale"],
        for_children=request.query_params.get("for") == "children",
    )
    if shown is None:
        raise HTTPException(status_code=404)
    return render(request, "rights/version.html", {"shown": shown})


routes = [
    Route("/privacy/my-data", export_page, methods=["GET"], name="rights.export"),
    Route(
        "/privacy/my-data/download",
        export_download,
        methods=["GET"],
        name="rights.export_download",
    ),
    Route(f"/privacy/receipts/{REFERENCE}", receipt_page, methods=["GET"], name="rights.receipt"),
    Route(
        f"/privacy/receipts/{REFERENCE}/download",
        receipt_download,
        methods=["GET"],
        name="rights.receipt_download",
    ),
    Route(
        f"/privacy/receipts/{REFERENCE}/proof",
        receipt_proof,
        methods=["GET"],
        name="rights.receipt_proof",
    ),
    Route("/receipts/verify", verify_form, methods=["GET"], name="rights.verify_form"),
    Route("/receipts/verify", verify, methods=["POST"], name="rights.verify"),
    Route("/.well-known/jwks.json", jwks, methods=["GET"], name="rights.jwks"),
    Route("/ledger/checkpoints", checkpoint_list, methods=["GET"], name="rights.checkpoints"),
    Route(
        f"/ledger/checkpoints/{SIZE}", checkpoint_page, methods=["GET"], name="rights.checkpoint"
    ),
    Route("/notices", notices, methods=["GET"], name="rights.notices"),
    Route(f"/notices/{KEY}", notice_history, methods=["GET"], name="rights.notice_history"),
    Route(
        f"/notices/{KEY}/v{REVISION}/{LOCALE}",
        notice_version,
        methods=["GET"],
        name="rights.notice_version",
    ),
]
