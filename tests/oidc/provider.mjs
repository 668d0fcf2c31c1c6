// A real OpenID provider for the tests: the npm package oidc-provider on loopback.
// Usage: node provider.mjs PORT REDIRECT_URI [REDIRECT_URI...]
// One confidential client (infrastream-portal / its secret), the CLI's public client
// (infrastream-cli, device authorization grant) and two people in different
// groups; the dev login page (devInteractions) accepts any password. The groups of a person
// can be changed while it runs: POST /test/groups/<id> with a JSON list (for role removal).
// Resolved from tests/npm, where dev.sh installs the test packages.
const { default: Provider } = await import(new URL('../npm/node_modules/oidc-provider/lib/index.js', import.meta.url));
import http from 'node:http';

const [port, ...redirects] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
// POST /test/id-token-ttl with a number of seconds (negative: already expired) changes it.
let idTokenTtl = 600;
const groups = {
  ada: ['qa-engineers'],
  omar: ['sre-oncall'],
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'infrastream-portal',
    client_secret: 'portal-secret-for-tests',
    redirect_uris: redirects,
    grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
  }, {
    // The CLI's public client: no secret, device authorization grant only.
    client_id: 'infrastream-cli',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  }],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
  },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  conformIdTokenClaims: false,
  ttl: { IdToken: () => idTokenTtl, AccessToken: 600, Session: 600, Interaction: 600, Grant: 600 },
  async findAccount(ctx, id) {
    if (!(id in groups)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, email: `${id}@example.test`,
                 groups: groups[id] };
      },
    };
  },
});
provider.proxy = false;

// The device authorization answer names a polling interval of 1 s (the RFC's default is 5),
// so the CLI's polling, which honours it, keeps the tests short. POST /test/slow-down makes
// the next device-code poll answer `slow_down`, as a loaded provider would.
let slowDown = 0;
provider.use(async (ctx, next) => {
  const polling = ctx.path === '/token' && ctx.method === 'POST';
  if (polling && slowDown > 0) {
    slowDown -= 1;
    ctx.status = 400;
    ctx.body = { error: 'slow_down', error_description: 'poll less often' };
    return;
  }
  await next();
  if (ctx.path === '/device/auth' && ctx.body && ctx.body.device_code) {
    ctx.body = { ...ctx.body, interval: 1 };
  }
});

const callback = provider.callback();
http.createServer((req, res) => {
  const m = req.url.match(/^\/test\/groups\/(\w+)$/);
  if (req.url === '/test/slow-down' && req.method === 'POST') {
    slowDown += 1;
    res.end('ok');
    return;
  }
  if (req.url === '/test/id-token-ttl' && req.method === 'POST') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { idTokenTtl = Number(body); res.end('ok'); });
    return;
  }
  if (m && req.method === 'POST') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { groups[m[1]] = JSON.parse(body); res.end('ok'); });
    return;
  }
  callback(req, res);
}).listen(Number(port), '127.0.0.1', () => { console.log(`listening ${issuer}`); });
