"""Schema extensions and the checks they run, one concern per module.

- ``query_limits``: the DocumentChecks extension (``make_query_limits``), HTTP's limits
  before execution, with ``cache`` (the documents it keeps by query text);
- ``documents``: checks of a whole document, cheapest first, graphql-core's validation last;
- ``rules``: limits of one operation that its document alone decides, as graphql-core
  validation rules;
- ``variables``: checks of one request, the node count at its coerced variables' sizes last;
- ``cost``: the measurements (the walk of an operation, the field cost, aliases written);
- ``operations``: the operation a request runs; ``strings``: strings no input may hold;
- ``errors``: error codes and masking (``ErrorCodes``); ``response``: the response's size.

The websocket server runs ``document_errors`` and ``request_error`` itself, through this
package's names.
"""

from api.extensions.documents import document_errors
from api.extensions.errors import MASKED_MESSAGE, ErrorCodes, format_error, format_errors
from api.extensions.operations import choose_operation
from api.extensions.query_limits import make_query_limits
from api.extensions.response import response_size_over, response_too_large
from api.extensions.rules import operation_limit
from api.extensions.strings import string_literal_error, variables_error
from api.extensions.variables import request_error

__all__ = [
    "MASKED_MESSAGE",
    "ErrorCodes",
    "choose_operation",
    "document_errors",
    "format_error",
    "format_errors",
    "make_query_limits",
    "operation_limit",
    "request_error",
    "response_size_over",
    "response_too_large",
    "string_literal_error",
    "variables_error",
]
