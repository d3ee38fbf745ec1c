// An independent check of a consent receipt with the npm `jose` package (not the library
// that signed it): reads {"jwks": …, "receipt": "…"} on stdin, prints the payload or fails.
import { pathToFileURL } from "node:url";

const { compactVerify, createLocalJWKSet } = await import(pathToFileURL(process.env.JOSE_MODULE).href);
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { jwks, receipt } = JSON.parse(input);
try {
  const { payload, protectedHeader } = await compactVerify(receipt, createLocalJWKSet(jwks), {
    algorithms: ["ES256"],
  });
  process.stdout.write(JSON.stringify({ valid: true, kid: protectedHeader.kid, payload: JSON.parse(new TextDecoder().decode(payload)) }));
} catch (error) {
  process.stdout.write(JSON.stringify({ valid: false, error: error.code || String(error) }));
}
