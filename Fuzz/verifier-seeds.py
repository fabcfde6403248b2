"""Seeds for Fuzz/run-verifier-fuzzers: a correctly signed request per scheme (the secret the
fuzzer uses), and HappyTalk answers of every kind."""
import base64, hashlib, hmac, os, sys

out = sys.argv[1]
secret = b"fuzz-s3cret"
body = b'{"uuid":"u-1","room_id":"r-1"}'
now = 1_800_000_000

def write(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)

def request(headers, query=b"", payload=body):
    return "\n".join(f"{k}: {v}" for k, v in headers).encode() + b"\0" + query + b"\0" + payload

mac = hmac.new(secret, body, hashlib.sha256).digest()
write("shopify", "signed", request([("x-shopify-hmac-sha256", base64.b64encode(mac).decode())]))
write("woocommerce", "signed", request([("x-wc-webhook-signature", base64.b64encode(mac).decode())]))
write("woocommerce", "ping", request([("content-type", "application/x-www-form-urlencoded")], payload=b"webhook_id=12"))
write("github", "signed", request([("x-hub-signature-256", "sha256=" + mac.hex())]))
stripe = hmac.new(secret, f"{now}.".encode() + body, hashlib.sha256).hexdigest()
write("stripe", "signed", request([("stripe-signature", f"t={now},v1={stripe}")]))
write("stripe", "overflow", request([("stripe-signature", f"t=-9223372036854775808,v1={stripe}")]))
std = base64.b64encode(hmac.new(secret, f"msg_1.{now}.".encode() + body, hashlib.sha256).digest()).decode()
write("standard-webhooks", "signed", request([("webhook-id", "msg_1"), ("webhook-timestamp", str(now)), ("webhook-signature", f"v1,{std}")]))
write("standard-webhooks", "overflow", request([("webhook-id", "msg_1"), ("webhook-timestamp", "-9223372036854775808"), ("webhook-signature", f"v1,{std}")]))
sha512 = base64.urlsafe_b64encode(hmac.new(secret, body, hashlib.sha512).digest()).decode().rstrip("=")
write("hmac", "signed", request([("x-sig", "v=" + sha512)]))
write("bearer", "signed", request([("authorization", "Bearer fuzz-s3cret")]))
write("header", "signed", request([("x-key", "fuzz-s3cret")]))
write("query", "signed", request([], query=b"key=fuzz-s3cret&x=1"))
write("none", "plain", request([]))
for name, answer in {
    "success": b'HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{"result":"success"}',
    "fail": b'HTTP/1.1 200 OK\r\nContent-Length: 44\r\n\r\n{"result":"fail","code":-503,"message":"room"}',
    "busy": b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 99999999999999999\r\nContent-Length: 0\r\n\r\n",
    "limited": b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "html": b"HTTP/1.1 200 OK\r\n\r\n<html>",
}.items():
    write("upstream", name, answer)
