"""The console's import pages: upload a CSV or XLSX export, see it read as the bus reads it (preview,
French row errors, nothing sent), send it with progress, download its row errors
(:mod:`techne.console.uploads` does the work)."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote as urlquote

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.errors import ConfigError
from producers.csv_import import RowError, read_profile_table
from producers.spreadsheet import TableError
from techne.console import i18n, uploads
from techne.console.web import Console, checked_form, venue_access


async def import_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    c, _, venue = venue_access(request)
    return c.render(request, "import.html", status, venue=venue, profiles=uploads.profiles(c.settings), error=error,
                    recent=uploads.recent(c.settings, venue))


async def import_upload(request: Request) -> Response:
    c, user, venue = venue_access(request)
    form = await checked_form(request)
    t = i18n.translator(request.state.lang)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await import_page(request, t("empty_file"), 400)
    raw = await upload.read(c.console.max_upload_bytes + 1)
    if len(raw) > c.console.max_upload_bytes:
        return await import_page(request, t("too_big", mb=c.console.max_upload_bytes // 1_048_576), 413)
    chosen = str(form.get("profile") or "auto")
    lang = request.state.lang
    try:
        if chosen == "auto":
            profile, problem = uploads.detect(raw, upload.filename, uploads.profiles(c.settings))
        else:
            profile = uploads.profile_named(c.settings, chosen)
            read_profile_table(raw, upload.filename, profile)
    except TableError as exc:
        return await import_page(request, t("unreadable", why=exc.message(lang)), 400)
    except ConfigError as exc:
        return await import_page(request, t("unreadable", why=str(exc)), 400)
    if profile is None:
        why = problem.message(lang) if problem is not None else t("empty_file")
        return await import_page(request, t("unreadable", why=why), 400)
    upload_id = uploads.save(c.settings, venue, upload.filename, raw, profile.name, user.username)
    return RedirectResponse(f"/lieux/{venue}/import/{upload_id}", status_code=303)


def _upload(request: Request) -> tuple[Console, str, str, dict[str, Any]]:
    c, _, venue = venue_access(request)
    upload_id = str(request.path_params["upload_id"])
    meta = uploads.meta(c.settings, venue, upload_id)
    if meta is None:
        raise HTTPException(404)
    return c, venue, upload_id, meta


async def _analysis(request: Request) -> tuple[Console, str, str, dict[str, Any], Any]:
    """The upload of the path analysed (dry run); the reading error's text if the file cannot be
    read; ``None`` if it was deleted (sent, or too old)."""
    c, venue, upload_id, meta = _upload(request)
    raw = uploads.data(c.settings, venue, upload_id)
    if raw is None:
        return c, venue, upload_id, meta, None
    try:
        profile = uploads.profile_named(c.settings, meta["profile"])
        analysis = await asyncio.to_thread(uploads.analyse, c.settings, venue, raw, meta["filename"], profile)
    except TableError as exc:
        return c, venue, upload_id, meta, exc.message(request.state.lang)
    except ConfigError as exc:
        return c, venue, upload_id, meta, str(exc)
    return c, venue, upload_id, meta, analysis


async def upload_page(request: Request) -> Response:
    c, venue, upload_id, meta, analysis = await _analysis(request)
    if isinstance(analysis, str):
        t = i18n.translator(request.state.lang)
        return c.render(request, "upload.html", 400, venue=venue, upload_id=upload_id, meta=meta, analysis=None,
                        error=t("unreadable", why=analysis[:300]), progress=None)
    return c.render(request, "upload.html", venue=venue, upload_id=upload_id, meta=meta, analysis=analysis,
                    error=None, progress=c.sender.progress(venue, upload_id), gone=analysis is None,
                    kept_errors=[RowError(**e) for e in (meta.get("result") or {}).get("errors", [])])


async def upload_send(request: Request) -> Response:
    _upload(request)  # access first, then the form's token
    await checked_form(request)
    c, venue, upload_id, _, analysis = await _analysis(request)
    if analysis is None:
        raise HTTPException(404)  # the file is gone: upload it again
    if isinstance(analysis, str):
        raise HTTPException(400)
    c.sender.start(venue, upload_id, analysis.table, analysis.profile)
    return RedirectResponse(f"/lieux/{venue}/import/{upload_id}", status_code=303)


async def upload_state(request: Request) -> Response:
    if request.state.user is None:
        return JSONResponse({"error": "login required"}, status_code=401)
    c, venue, upload_id, meta = _upload(request)
    progress = c.sender.progress(venue, upload_id)
    if progress is None:
        return JSONResponse({"state": "done" if meta.get("result") else "idle", "result": meta.get("result")})
    return JSONResponse({"state": progress.state, "done": progress.done, "total": progress.total,
                         "result": progress.result, "error": progress.error})


async def upload_errors(request: Request) -> Response:
    _, _, _, meta, analysis = await _analysis(request)
    if isinstance(analysis, str):
        raise HTTPException(404)
    errors = analysis.errors if analysis is not None else [
        RowError(**e) for e in (meta.get("result") or {}).get("errors", [])]
    lang = request.state.lang
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ligne", "colonne", "raison"] if lang == "fr" else ["line", "column", "reason"])
    writer.writerows((e.line, e.column, e.message(lang)) for e in errors)
    name = urlquote(f"erreurs-{Path(meta['filename']).stem}.csv")
    return Response(("\ufeff" + out.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})


