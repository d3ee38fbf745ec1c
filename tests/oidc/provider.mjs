// A real OpenID Connect provider on loopback for the staff sign-in tests: node-oidc-provider
// (fetched by `make test` into .cache/), configured like a library's identity provider.
// Accounts are fixed test users; their `groups` claim says which staff role they hold.
//
// Environment: OIDC_PROVIDER_MODULE (path to the package's main module), PORT, CLIENT_ID,
// CLIENT_SECRET, REDIRECT_URI, ID_TOKEN_TTL (seconds).
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

const ACCOUNTS = {
  'desk-dana': { name: 'Dana (desk)', groups: ['library-desk'] },
  'officer-omar': { name: 'Omar (privacy officer)', groups: ['library-privacy'] },
  'reader-rita': { name: 'Rita (no staff group)', groups: ['library-readers'] },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      post_logout_redirect_uris: [],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  claims: { openid: ['sub'], profile: ['name', 'groups'] },
  // The portal reads the groups from the ID token, as most library identity providers send them.
  conformIdTokenClaims: false,
  ttl: { IdToken: Number(process.env.ID_TOKEN_TTL || 3600) },
  cookies: { keys: ['test-only-cookie-key'] },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
