"""app.py — the WSGI application behind nginx in the nginx-gunicorn image.
GET /ping answers 200 once the model file is readable; POST /invocations
answers JSON: the model's greeting (/opt/ml/model/greeting.txt), the
request body, and who serves it (uid, and the owner of nginx's temp
directory as the container sees it)."""
import json
import os
import pwd

MODEL = os.path.join(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"), "greeting.txt")


def _greeting():
    with open(MODEL) as f:
        return f.read().strip()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/ping":
        try:
            _greeting()
        except OSError as e:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [("model not readable: %s\n" % e).encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    if path == "/invocations" and environ.get("REQUEST_METHOD") == "POST":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n).decode("utf-8", "replace")
        st = os.stat("/var/lib/nginx/body")
        out = {"greeting": _greeting(), "body": body, "uid": os.getuid(),
               "user": pwd.getpwuid(os.getuid()).pw_name,
               "nginx_temp_owner": pwd.getpwuid(st.st_uid).pw_name}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(out).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
