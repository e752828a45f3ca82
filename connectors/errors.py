"""Errors that stop a migration instead of dead-lettering its rows.

A wrong key or host would otherwise turn every row of the job into a dead letter; these errors
end the run at once and name the flag to fix. Their messages never include a key's value.
"""


class MigrationAbort(RuntimeError):
    """The run cannot go on; ``flag`` names the option the user should fix."""

    def __init__(self, message: str, flag: str | None = None):
        # Both in args: Beam re-raises a DoFn's exception as type(exc)(*new_args), and a flag
        # kept only as an attribute would be lost on the way.
        super().__init__(message, flag)
        self.flag = flag

    def __str__(self) -> str:
        return str(self.args[0])


class AuthenticationError(MigrationAbort):
    """An outside system refused our credentials (HTTP 401/403)."""
