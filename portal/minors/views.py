"""Guardian pages (children's notices, statuses and consent) and the minor's own controls
(a link code for a guardian, sharing their choices). Nothing here reads library use."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.catalog.jurisdiction import AgeBand
from portal.clock import utcnow
from portal.consent.policy import ConsentError, Status
from portal.consent.reads import message_grid
from portal.contacts.policy import shown
from portal.credentials import throttle
from portal.credentials.throttle import Guessing
from portal.decisions.forms import left_as, parse_decision, parse_messages
from portal.decisions.views import settle_refusal
from portal.errors import ConsentCode, DomainError, ErrorCode, MinorsCode
from portal.i18n import current_locale
from portal.minors import services
from portal.patrons.access import count_guess, require_patron, visitor_age
from portal.patrons.services import set_sharing
from portal.web.paths import GROUP, KEY
from portal.web.rendering import render
from portal.web.requests import field, number_field, redirect_to, settings_of


async def _require_adult(request: Request) -> int:
    patron = require_patron(request)
    if (await visitor_age(request, patron)).band is not AgeBand.ADULT:
        raise HTTPException(status_code=403)
    return patron.patron_id


async def guardian_home(request: Request, *, error: ErrorCode | None = None) -> Response:
    guardian_id = await _require_adult(request)
    children = await services.children(
        guardian_id, current_locale(), now=utcnow(), timezone=settings_of(request).timezone
    )
    return render(
        request,
        "minors/home.html",
        {"children": children},
        error=error,
    )


async def redeem_code(request: Request) -> Response:
    guardian_id = await _require_adult(request)
    form = await request.form()
    # Codes are guessed like PINs: counted per guardian account and per client network.
    reservation = await count_guess(request, Guessing.LINK_CODE, str(guardian_id))
    if reservation is None:
        return await guardian_home(request, error=MinorsCode.LINK_CODE_THROTTLED)
    try:
        await services.redeem_link_code(
            settings_of(request).secret_key,
            guardian_id,
            field(form, "code"),
            field(form, "label"),
            now=utcnow(),
            timezone=settings_of(request).timezone,
        )
    except services.MinorsError as failure:
        return await guardian_home(request, error=failure.code)
    await throttle.refund(reservation)
    return redirect_to(request, "minors.guardian_home")


async def end_link(request: Request) -> Response:
    """A guardian ends their own link to a child."""
    guardian_id = await _require_adult(request)
    link_id = number_field(await request.form(), "link")
    try:
        if link_id is None:
            raise services.MinorsError(MinorsCode.NOT_LINKED)
        await services.end_own_link(guardian_id, link_id, now=utcnow())
    except services.MinorsError as failure:
        return await guardian_home(request, error=failure.code)
    return redirect_to(request, "minors.guardian_home")


async def guardian_notice(
    request: Request, *, error: ErrorCode | None = None, link_id: int | None = None
) -> Response:
    """A service's notice in the guardian's language for one child (its heading names the
    child), with the child's version beside it when that is what the child reads."""
    guardian_id = await _require_adult(request)
    key = request.path_params["key"]
    notice = await services.notice_for_guardian(key, current_locale())
    if notice is None:
        raise HTTPException(status_code=404)
    children = await services.children(
        guardian_id,
        current_locale(),
        now=utcnow(),
        timezone=settings_of(request).timezone,
        only_service=key,
    )
    if link_id is None:
        link_id = number_field(FormData(dict(request.query_params)), "child")
    chosen = [child for child in children if child.link_id == link_id]
    if not chosen and len(children) == 1:
        chosen = children
    return render(
        request,
        "minors/notice.html",
        {
            "notice": notice,
            "key": key,
            # Each page with choices is about one child, named in its heading; with several
            # children and none chosen, the page asks which child (no choices on it).
            "child": chosen[0] if chosen else None,
            "choose_from": [] if chosen else children,
            "Status": Status,
        },
        error=error,
    )


async def guardian_decide(request: Request) -> Response:
    guardian_id = await _require_adult(request)
    key = request.path_params["key"]
    form = await request.form()
    link_id = number_field(form, "link")
    try:
        decision = parse_decision(form)
        if link_id is None:
            raise services.MinorsError(MinorsCode.NOT_LINKED)
        await services.guardian_decide(
            guardian_id,
            link_id,
            key,
            decision.decision,
            notice_version_id=decision.notice_version_id,
            expected_revision=decision.expected_revision,
            locale=current_locale(),
            now=utcnow(),
            timezone=settings_of(request).timezone,
        )
    except (ConsentError, services.MinorsError) as failure:
        if failure.code is ConsentCode.UNKNOWN_SERVICE:
            raise HTTPException(status_code=404) from None
        return await guardian_notice(request, error=failure.code, link_id=link_id)
    response = redirect_to(request, "minors.guardian_notice", key=key)
    response.headers["location"] += f"?child={link_id}"
    return response


async def guardian_messages(
    request: Request,
    *,
    error: ErrorCode | None = None,
    link_id: int | None = None,
    ticked: set[str] | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    """A messaging service for one child: the full notice, the child's version beside it,
    then the grid (a guardian verified in person chooses for a child below the
    guardian-consent age; others see where the choices stand, when they may)."""
    guardian_id = await _require_adult(request)
    group = request.path_params["group"]
    timezone = settings_of(request).timezone
    children = await services.children(
        guardian_id, current_locale(), now=utcnow(), timezone=timezone, only_group=group
    )
    if link_id is None:
        link_id = number_field(FormData(dict(request.query_params)), "child")
    chosen = [child for child in children if child.link_id == link_id]
    if not chosen and len(children) == 1:
        chosen = children
    child = chosen[0] if chosen else None
    try:
        if child is None:
            # The notice alone, and which child the page is about: nobody's choices.
            found = services.ChildMessages(
                await message_grid(0, group, current_locale()), True, None, {}
            )
        else:
            found = await services.messages_for_guardian(
                guardian_id, child.link_id, group, current_locale(), now=utcnow(), timezone=timezone
            )
    except ConsentError as failure:
        raise HTTPException(status_code=404, detail=failure.code) from None
    saved = request.query_params.get("saved", "")
    return render(
        request,
        "minors/messages.html",
        {
            "found": found,
            "group": group,
            "child": child,
            "choose_from": [] if chosen else children,
            "contacts": {channel: shown(value) for channel, value in found.contacts.items()},
            "entered": entered or {},
            "ticked": ticked,
            "saved": int(saved) if saved.isascii() and saved.isdigit() and len(saved) < 4 else None,
        },
        error=error,
    )


async def guardian_choose_messages(request: Request) -> Response:
    guardian_id = await _require_adult(request)
    group = request.path_params["group"]
    settings = settings_of(request)
    raw = await request.form()
    link_id = number_field(raw, "link")
    try:
        form = parse_messages(raw)
        if link_id is None:
            raise services.MinorsError(MinorsCode.NOT_LINKED)
        changed = await services.guardian_choose_messages(
            guardian_id,
            link_id,
            group,
            form.cells,
            form.contacts,
            locale=current_locale(),
            now=utcnow(),
            timezone=settings.timezone,
            phone_region=settings.phone_region,
        )
    except DomainError as failure:
        settle_refusal(failure.code)
        # Nothing was changed: the page comes back as the guardian left it, with the reason.
        return await guardian_messages(
            request,
            error=failure.code,
            link_id=link_id,
            **left_as(raw),
        )
    response = redirect_to(request, "minors.guardian_messages", group=group)
    response.headers["location"] += f"?child={link_id}&saved={len(changed)}"
    return response


async def link_code(request: Request) -> Response:
    """The minor makes a one-time code to give to a parent or guardian."""
    patron = require_patron(request)
    try:
        code, expires_at = await services.issue_link_code(
            settings_of(request).secret_key,
            patron.patron_id,
            now=utcnow(),
            timezone=settings_of(request).timezone,
        )
    except services.MinorsError:
        raise HTTPException(status_code=403) from None
    return render(request, "minors/link_code.html", {"code": code, "expires_at": expires_at})


async def child_end_link(request: Request) -> Response:
    """A minor ends a link an adult made with their code; back to My privacy, which tells
    them it ended. A link checked in person is ended by library staff."""
    patron = require_patron(request)
    if (await visitor_age(request, patron)).band is AgeBand.ADULT:
        raise HTTPException(status_code=403)
    link_id = number_field(await request.form(), "link")
    if link_id is not None:
        try:
            await services.end_code_link_as_child(patron.patron_id, link_id, now=utcnow())
        except services.MinorsError:
            raise HTTPException(status_code=403) from None
    return redirect_to(request, "consent.privacy")


async def sharing(request: Request) -> Response:
    patron = require_patron(request)
    if (await visitor_age(request, patron)).band is not AgeBand.TEEN:
        raise HTTPException(status_code=403)
    share = field(await request.form(), "share") == "yes"
    await set_sharing(patron.patron_id, shares=share)
    return redirect_to(request, "consent.privacy")


routes = [
    Route("/guardian", guardian_home, methods=["GET"], name="minors.guardian_home"),
    Route("/guardian/link", redeem_code, methods=["POST"], name="minors.redeem_code"),
    Route("/guardian/unlink", end_link, methods=["POST"], name="minors.end_link"),
    Route(
        f"/guardian/services/{KEY}",
        guardian_notice,
        methods=["GET"],
        name="minors.guardian_notice",
    ),
    Route(
        f"/guardian/services/{KEY}/decision",
        guardian_decide,
        methods=["POST"],
        name="minors.guardian_decide",
    ),
    Route(
        f"/guardian/messages/{GROUP}",
        guardian_messages,
        methods=["GET"],
        name="minors.guardian_messages",
    ),
    Route(
        f"/guardian/messages/{GROUP}",
        guardian_choose_messages,
        methods=["POST"],
        name="minors.guardian_choose_messages",
    ),
    Route("/privacy/guardian-code", link_code, methods=["POST"], name="minors.link_code"),
    Route("/privacy/sharing", sharing, methods=["POST"], name="minors.sharing"),
    Route(
        "/privacy/guardian-links/end",
        child_end_link,
        methods=["POST"],
        name="minors.child_end_link",
    ),
]
