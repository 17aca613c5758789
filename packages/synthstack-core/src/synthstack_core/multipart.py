"""``multipart/form-data`` uploads, parsed by the core while they stream in.

An adapter hands the core the request body as an async iterator of chunks (it never reads the whole
body itself); :func:`receive_form` parses it incrementally with ``python-multipart``, writing each
file part straight to a temporary file and keeping the (small) text fields in memory:

* a declared ``Content-Length`` over the limit is a 413 before a byte is read; a body that turns
  out larger (chunked uploads) is a 413 as soon as the limit is crossed, and reading stops there;
* a body that is not ``multipart/form-data`` with a boundary is a 415; one that does not parse, or
  ends before its closing boundary, is a 400;
* text fields are bounded in count and size (422), file parts by the body limit; a file name
  holding a NUL character is a 422 before the file is written;
* whatever happens, the temporary files are removed: on an error here, and by
  :meth:`FormData.close` once the handler is done (the core's pipeline calls it).

:func:`parse_form` then validates the fields against an operation's form model: a value given
more than once for a single-valued field, or a field the model does not know, is a 422.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import types
import typing
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import (
    MultipartParser,
    MultipartState,
    parse_options_header,
)

from synthstack_core.errors import (
    FieldError,
    InvalidRequest,
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from synthstack_core.schemas.common import Limits
from synthstack_core.validation import invalid_request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = [
    "MAX_FIELDS",
    "MAX_FIELD_BYTES",
    "FormData",
    "UploadedFile",
    "parse_form",
    "receive_form",
]

M = TypeVar("M", bound=BaseModel)

#: At most this many parts (files and fields) in one form.
MAX_FIELDS = 32
#: A text field larger than this is refused (a 422): text goes in fields, documents in files.
MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True)
class UploadedFile:
    """One file part of an upload, on disk until the request is over."""

    field: str
    #: The file name the client declared (a label only: never used as a path).
    filename: str
    #: The content type the client declared (a hint only: content is checked by its bytes).
    content_type: str
    path: Path
    size: int

    def read_bytes(self) -> bytes:
        """The whole file (callers bound it by the upload limit)."""
        return self.path.read_bytes()

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(cls)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "binary"}


@dataclass
class FormData:
    """The parsed form: text fields (every value, in order) and files."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    def close(self) -> None:
        """Remove the temporary files (idempotent)."""
        for uploads in self.files.values():
            for upload in uploads:
                with contextlib.suppress(FileNotFoundError):
                    upload.path.unlink()


def _boundary(content_type: str) -> bytes:
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary", b"")
    if media_type.lower() != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(
            "Send the request body as `multipart/form-data` (with a boundary)."
        )
    return boundary


class _Receiver:
    """python-multipart callbacks: the parts of one form, files written to ``tmp_dir``."""

    def __init__(self, form: FormData, tmp_dir: Path | None) -> None:
        self.form = form
        self.tmp_dir = tmp_dir
        self.parts = 0
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._filename: str | None = None
        self._content_type = ""
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._text = bytearray()
        self.error: Exception | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_FIELDS:
            raise _Refused(InvalidRequest(f"A form has at most {MAX_FIELDS} parts."))
        self._headers = {}
        self._header_name = self._header_value = b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition"))
        name = options.get(b"name")
        if disposition.lower() != b"form-data" or name is None:
            raise _Refused(MalformedBody("Every form part needs `Content-Disposition: form-data`."))
        self._name = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        if self._filename is not None and "\x00" in self._filename:
            # A file name is a label (a document's default `source`): text, never a NUL.
            raise _Refused(
                InvalidRequest(
                    f"The file name of the form field `{self._name}` contains a NUL character.",
                    errors=[
                        FieldError(
                            (self._name, "filename"),
                            "File name must not contain NUL characters",
                            "string_nul",
                        )
                    ],
                )
            )
        self._content_type = self._headers.get(b"content-type", b"").decode("latin-1").strip()
        self._text = bytearray()
        self._size = 0
        if self._filename is not None:
            handle, name_on_disk = tempfile.mkstemp(prefix="synthstack-upload-", dir=self.tmp_dir)
            self._path = Path(name_on_disk)
            self._file = os.fdopen(handle, "wb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._file is not None:
            self._file.write(piece)
            self._size += len(piece)
            return
        self._text += piece
        if len(self._text) > MAX_FIELD_BYTES:
            raise _Refused(
                InvalidRequest(
                    f"The form field `{self._name}` is larger than {MAX_FIELD_BYTES} bytes.",
                    errors=[FieldError((self._name,), "Field is too large", "string_too_long")],
                )
            )

    def part_end(self) -> None:
        if self._file is not None and self._path is not None:
            self._file.close()
            self._file = None
            upload = UploadedFile(
                field=self._name,
                filename=self._filename or "",
                content_type=self._content_type,
                path=self._path,
                size=self._size,
            )
            self._path = None
            self.form.files.setdefault(self._name, []).append(upload)
            return
        try:
            text = bytes(self._text).decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(
                InvalidRequest(
                    f"The form field `{self._name}` is not UTF-8 text.",
                    errors=[FieldError((self._name,), "Field is not UTF-8", "string_type")],
                )
            ) from None
        self.form.fields.setdefault(self._name, []).append(text)

    def abort(self) -> None:
        """Close and remove a file part being written."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._path = None


class _Refused(Exception):
    """Carries a SynthStack error out of a parser callback."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def receive_form(
    headers: Mapping[str, str],
    stream: AsyncIterable[bytes],
    *,
    limit: int,
    tmp_dir: Path | None = None,
) -> FormData:
    """Parse a ``multipart/form-data`` body from ``stream`` (see the module docstring).

    ``headers`` are the request's, lower-case. On any error every temporary file is removed.
    """
    boundary = _boundary(headers.get("content-type", ""))
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The upload is larger than {limit} bytes.")
    form = FormData()
    receiver = _Receiver(form, tmp_dir)
    parser = MultipartParser(boundary, receiver.callbacks())
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"The upload is larger than {limit} bytes.")
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END:
            raise MalformedBody("The multipart body ends before its closing boundary.")
    except _Refused as refused:
        receiver.abort()
        form.close()
        raise refused.error from None
    except MultipartParseError:
        receiver.abort()
        form.close()
        raise MalformedBody("The request body is not valid multipart/form-data.") from None
    except BaseException:
        receiver.abort()
        form.close()
        raise
    return form


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is list:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return False


def parse_form(model: type[M], form: FormData, limits: Limits) -> M:
    """Validate ``form`` against ``model`` (form values are strings, converted where the model
    says; files are :class:`UploadedFile`).

    A list field may be sent as ``name`` or ``name[]``, repeated; any other field once.
    """
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    known = model.model_fields
    entries: list[tuple[str, list[Any]]] = [*form.fields.items(), *form.files.items()]
    for name, values in entries:
        key = name.removesuffix("[]") if name.endswith("[]") else name
        info = known.get(key)
        if info is None:
            errors.append(FieldError((name,), "Extra inputs are not permitted", "extra"))
            continue
        if _is_list(info.annotation):
            data.setdefault(key, []).extend(values)
        elif len(values) > 1 or key in data:
            errors.append(FieldError((key,), "Field must be given once", "too_many_values"))
        else:
            data[key] = values[0]
    if errors:
        raise InvalidRequest(
            "The form has unknown or repeated fields: "
            + ", ".join(".".join(map(str, e.loc)) for e in errors[:5])
            + ".",
            errors=errors,
        )
    try:
        return model.model_validate(data, context={"limits": limits})
    except ValidationError as exc:
        raise invalid_request(exc) from None
