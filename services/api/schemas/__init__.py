"""Response models of the HTTP API: one module per route module (``services.api.routes``).

They describe the JSON each route returns today, so that ``/openapi.json``
documents every response body. Money and other exact decimals stay decimal
strings (``DecimalText``); ratios and quantities are JSON numbers (``Number``:
an integer stays an integer). Views that others extend (data completeness,
ingest counters, the review pack) accept extra keys.
"""
