import pytest

from mnbench.cli import app as cli_app


@pytest.fixture(scope="session")
def app():
    """The real `mnbench` Typer app with every command registered, for typer.testing.CliRunner."""
    cli_app._register()
    return cli_app.app
