"""README.md's settings table names every setting the service reads."""

from __future__ import annotations

from pathlib import Path

from synthstack_core.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = list(getattr(alias, "choices", [alias]))
        if not any(f"`{env}`" in README for env in names if isinstance(env, str)):
            missing.append(f"{name} ({', '.join(map(str, names))})")
    assert missing == [], f"settings missing from README.md: {missing}"
