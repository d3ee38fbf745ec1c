// A real OpenID Connect provider on loopback for the staff sign-in tests: node-oidc-provider
// (fetched by `make test` into .cache/), configured like a library's identity provider.
// Accounts are fixed test users (desk-dana, officer-omar, reader-rita, both-bo); their
// `groups` claim, in the ID token, says which staff role they hold.
//
// Environment: OIDC_PROVIDER_MODULE (path to the package's main module), PORT, CLIENT_ID,
// CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI (optional), ID_TOKEN_TTL (seconds,
// optional), MISBEHAVE (optional, test-only: `audience` or `expired`, see below).
// Prints `ready <issuer>` on stdout once listening; everything else goes to stderr.
import * as querystring from 'node:querystring';
import { pathToFileURL } from 'node:url';

// oidc-provider 9 uses crypto.hash (Node 20.12+); Debian 12's own nodejs package is 18.
const [nodeMajor] = process.versions.node.split('.').map(Number);
if (nodeMajor < 20) {
  process.stderr.write(`provider.mjs needs Node 20 or later, this is ${process.version}\n`);
  process.exit(2);
}

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`provider.mjs: ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

const { default: Provider } = await import(pathToFileURL(required('OIDC_PROVIDER_MODULE')).href);

const port = Number(required('PORT'));
const issuer = `http://127.0.0.1:${port}`;
const clientId = required('CLIENT_ID');
const misbehave = process.env.MISBEHAVE || '';
if (!['', 'audience', 'expired'].includes(misbehave)) {
  process.stderr.write(`provider.mjs: unknown MISBEHAVE=${misbehave} (audience, expired)\n`);
  process.exit(2);
}

const ACCOUNTS = {
  'desk-dana': { name: 'Dana (desk)', groups: ['library-desk'] },
  'officer-omar': { name: 'Omar (privacy officer)', groups: ['library-privacy'] },
  'reader-rita': { name: 'Rita (no staff group)', groups: ['library-readers'] },
  'both-bo': { name: 'Bo (desk and privacy)', groups: ['library-desk', 'library-privacy'] },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: required('CLIENT_SECRET'),
      redirect_uris: [required('REDIRECT_URI')],
      post_logout_redirect_uris: process.env.POST_LOGOUT_REDIRECT_URI
        ? [process.env.POST_LOGOUT_REDIRECT_URI]
        : [],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      // Every ID token says when the person last logged in (auth_time), as most providers do,
      // so a relying party can tell whether the login it forced really happened.
      require_auth_time: true,
    },
  ],
  pkce: { required: () => true },
  features: {
    // The built-in login page (a known login, any password) is the only interaction: see
    // loadExistingGrant and the middleware below.
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  claims: { openid: ['sub'], profile: ['name', 'groups'] },
  // The portal reads the groups from the ID token, as most library identity providers send them.
  conformIdTokenClaims: false,
  // The portal is a first-party client: staff are never asked to consent, only to log in.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile');
    await grant.save();
    return grant;
  },
  ttl: {
    IdToken: Number(process.env.ID_TOKEN_TTL || 3600),
    AccessToken: 3600,
    AuthorizationCode: 60,
    Grant: 3600,
    Interaction: 600,
    Session: 3600,
  },
  cookies: { keys: ['test-only-cookie-key'] },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(ACCOUNTS, id)) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...ACCOUNTS[id] }; } };
  },
});
provider.proxy = false;

// A provider that gets things wrong, so the portal's tests can prove it refuses the result.
const issue = provider.IdToken.prototype.issue;
if (misbehave === 'audience') {
  // Every ID token is addressed to another application. The audience comes from
  // this.client.clientId (lib/models/id_token.js), so the token is issued through a view of
  // the client that reports another id; the real client still signs it.
  provider.IdToken.prototype.issue = async function issueForAnotherApp(options) {
    if (options?.use !== 'idtoken') return issue.call(this, options);
    const client = this.client;
    this.client = new Proxy(client, {
      get(target, property) {
        if (property === 'clientId') return 'some-other-app';
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      return await issue.call(this, options);
    } finally {
      this.client = client;
    }
  };
} else if (misbehave === 'expired') {
  // Every ID token was issued two hours ago and expired an hour ago.
  provider.IdToken.prototype.issue = async function issueExpired(options) {
    if (options?.use !== 'idtoken') return issue.call(this, options);
    const now = Math.floor(Date.now() / 1000);
    this.set('iat', now - 7200);
    return issue.call(this, { ...options, expiresAt: now - 3600 });
  };
}

// devInteractions lets any login through; an unknown one is refused here the way a provider
// refuses a wrong password, with the login form again.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)
      && ctx.is('application/x-www-form-urlencoded')) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const body = querystring.parse(Buffer.concat(chunks).toString());
    if (body.prompt === 'login' && !Object.hasOwn(ACCOUNTS, String(body.login))) {
      ctx.status = 303;
      ctx.redirect(ctx.path);
      return;
    }
    ctx.request.body = body; // already read: the provider's own parser takes it from here
  }
  await next();
});

provider.on('server_error', (ctx, error) => {
  process.stderr.write(`server_error ${ctx.method} ${ctx.path}: ${error.stack}\n`);
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
