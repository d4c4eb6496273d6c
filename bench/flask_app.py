"""The Flask recipe that `#[require_api_key]` replaces, as its readers deploy it: a decorator that
checks the `x-api-key` header against a list of plaintext keys, logging a warning per
unauthorized attempt. Served by gunicorn in bench/vs_flask.py.

Keys come from API_KEYS (comma-separated). Unlike the recipe, the warning does not contain the
presented key (logging secrets is one of the things this crate exists to stop); the cost of the
line is the same.
"""

import os
from functools import wraps

from flask import Flask, jsonify, request

app = Flask(__name__)
valid_api_keys = [k for k in os.environ.get("API_KEYS", "").split(",") if k]


def require_api_key(f):
    @wraps(f)
    def decorated(*args, **kwargs):
        api_key = request.headers.get("x-api-key")
        if api_key and api_key in valid_api_keys:
            return f(*args, **kwargs)
        app.logger.warning("Unauthorized access attempt from %s", request.remote_addr)
        return jsonify({"error": "Unauthorized access"}), 401

    return decorated


@app.route("/health")
def health():
    return jsonify({"status": "ok"})


@app.route("/secure-data")
@require_api_key
def secure_data():
    return jsonify({"data": "This is secured data"})
