"""``python -m synthstack_django <command>``: Django's ``manage.py`` for this project.

For example ``python -m synthstack_django migrate`` (Django's own tables: auth, admin, sessions;
and the core's, through the core's Alembic migrations) and
``python -m synthstack_django createsuperuser``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a Django management command (``argv`` defaults to ``sys.argv``)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthstack_django.settings")
    from django.core.management import execute_from_command_line

    args = list(argv if argv is not None else sys.argv)
    # Django names the program after argv[0]; "__main__.py" would read "python -m django".
    args[0] = "python -m synthstack_django"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
