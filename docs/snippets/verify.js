// Verify a Mira webhook delivery with Node.js (>= 16) and its standard library only.
// Pass the raw request body as a Buffer: in Express, express.raw({ type: "application/json" }).
"use strict";
const { createHmac, timingSafeEqual } = require("node:crypto");

// X-Mira-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed with the
// signing secret string exactly as stored in the Secret ("whsec_" prefix included).
function verifyMiraSignature(secret, body, signature) {
  const expected = Buffer.from(createHmac("sha256", secret).update(body).digest("hex"));
  const got = Buffer.from(String(signature || ""));
  return expected.length === got.length && timingSafeEqual(expected, got);
}

// webhook-signature (Standard Webhooks): space-separated "v1,<base64>" entries,
// HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<raw body>", keyed with the
// base64-decoded part of the secret after "whsec_". Any matching v1 entry passes
// (during a secret rotation there is one per secret); stale timestamps do not.
function verifyWebhookSignature(secret, headers, body, toleranceSeconds = 300) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures || !/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
  return signatures.split(" ").some((entry) => {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") return false;
    const got = Buffer.from(entry.slice(comma + 1), "base64");
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

module.exports = { verifyMiraSignature, verifyWebhookSignature };

// Command line: MIRA_SIGNING_SECRET=whsec_… X_MIRA_SIGNATURE=… WEBHOOK_ID=… \
//   WEBHOOK_TIMESTAMP=… WEBHOOK_SIGNATURE=… node verify.js < body.json
if (require.main === module) {
  const chunks = [];
  process.stdin.on("data", (c) => chunks.push(c));
  process.stdin.on("end", () => {
    const body = Buffer.concat(chunks);
    const env = process.env;
    const mira = verifyMiraSignature(env.MIRA_SIGNING_SECRET, body, env.X_MIRA_SIGNATURE);
    const standard = verifyWebhookSignature(env.MIRA_SIGNING_SECRET, {
      "webhook-id": env.WEBHOOK_ID,
      "webhook-timestamp": env.WEBHOOK_TIMESTAMP,
      "webhook-signature": env.WEBHOOK_SIGNATURE,
    }, body);
    console.log(`X-Mira-Signature: ${mira ? "ok" : "rejected"}`);
    console.log(`webhook-signature: ${standard ? "ok" : "rejected"}`);
    process.exitCode = mira && standard ? 0 : 1;
  });
}
