"""Errors that stop a migration instead of dead-lettering its rows.

A wrong key or host would otherwise turn every row of the job into a dead letter; these errors
end the run at once and name the flag to fix. Their messages never include a key's value.
"""


class MigrationAbort(RuntimeError):
    """The run cannot go on; ``flag`` names the option the user should fix."""

    def __init__(self, message: str, flag: str | None = None):
        super().__init__(message)
        self.flag = flag


class AuthenticationError(MigrationAbort):
    """An outside system refused our credentials (HTTP 401/403)."""
