"""The `meshless digests` command: prints the catalog and fails on an incomplete one."""

from __future__ import annotations

from typer.testing import CliRunner

from infra.cli import app


class TestDigestsCommand:
    """Reviewers check a chart bump with this command before trusting the catalog."""

    def test_prints_every_image_of_a_version(self) -> None:
        result = CliRunner().invoke(
            app, ["digests", "--version", "1.16.19"], env={"COLUMNS": "200"}
        )
        assert result.exit_code == 0, result.output
        assert "quay.io/cilium/operator-aws:v1.16.19" in result.output
        assert "quay.io/cilium/operator-generic:v1.16.19" in result.output
        assert (
            "sha256:377175048c79d12c129d29e7a56268e1edaad37c96e649e892465c01bf2b4f8f"
            in result.output
        )
        assert "catalog OK: 1 version(s)" in result.output

    def test_unknown_version_exits_2_listing_known(self) -> None:
        result = CliRunner().invoke(app, ["digests", "--version", "1.99.0"])
        assert result.exit_code == 2
        assert "known: 1.16.5, 1.16.19, 1.17.18" in result.output
