"""JSONata templates in a connector's config: recipients, URLs, header values, record keys.

They are compiled when the connector is built, so a syntax error shows in ``test()`` before
any message is sent, and evaluated per message on the payload. Compiled expressions are
cached per thread (jsonatapy's must not cross threads), so evaluation goes through
``transform`` on whatever thread runs ``write`` rather than keeping compiled objects here.
Every failure is permanent for its message: the same payload would fail the same way again.
"""

from __future__ import annotations

from typing import Any

from integrationos.connectors.base import ConnectorError
from integrationos.engine.transform import TransformError, compile_expression, transform


class Templates:
    """Named expressions, e.g. ``{"to": "$.email", "headers.X-Id": "$.id"}``."""

    def __init__(self, expressions: dict[str, str]) -> None:
        self._expressions = expressions
        self.problem = _first_problem(expressions)

    def check(self) -> None:
        """Refuse to send anything while an expression does not compile."""
        if self.problem is not None:
            raise ConnectorError("TEMPLATE_INVALID", self.problem, retryable=False)

    def value(self, name: str, payload: Any) -> Any:
        """The JSON value of ``name`` on ``payload``; None if undefined or not configured."""
        expression = self._expressions.get(name)
        if expression is None:
            return None
        self.check()
        try:
            output, _ = transform(expression, payload)
        except TransformError as exc:
            raise ConnectorError("TEMPLATE_ERROR", f"{name}: {exc.message}",
                                 retryable=False) from None
        return output

    def text(self, name: str, payload: Any) -> str | None:
        """The value as text: strings as they are, numbers written out, None if undefined."""
        value = self.value(name, payload)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(int(value)) if float(value).is_integer() else str(value)
        raise ConnectorError("TEMPLATE_TYPE", f"{name} gave {type(value).__name__}, "
                             "expected text or a number", retryable=False)


def _first_problem(expressions: dict[str, str]) -> str | None:
    for name, expression in expressions.items():
        try:
            compile_expression(expression)
        except TransformError as exc:
            return f"{name}: {exc.message}"
    return None
