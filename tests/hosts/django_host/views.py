"""The host's own DRF view, authenticated by SynthStack's API keys."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmI(APIView):
    """The caller's tenant (``request.auth`` is the core's ``Principal``)."""

    def get(self, request: Request) -> Response:
        return Response({"tenant": request.auth.tenant, "user": str(request.user)})
