// openid-client 6 (Node) against Latch, the way its README uses it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as client from 'openid-client'
import { issuer, registerClient, signIn } from './latch.js'

const redirectUri = 'https://rp.example/callback'

// configFor discovers Latch for a client. allowInsecureRequests only
// because the test issuer is http://127.0.0.1; enableNonRepudiationChecks
// makes openid-client verify ID token signatures against the JWKS.
async function configFor (registered, metadata = {}, auth) {
  return client.discovery(new URL(issuer), registered.client_id, metadata, auth,
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] })
}

// login: authorization URL without state (PKCE instead, openid-client's
// default), callback with iss, code exchange.
async function login (config, scope = 'openid email offline_access') {
  const codeVerifier = client.randomPKCECodeVerifier()
  const nonce = client.randomNonce().slice(0, 6) // short nonces must work too
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce
  })
  assert.equal(url.searchParams.has('state'), false)
  const callback = await signIn(url, { user: 'user-1', claims: { email: 'ann@example.com', email_verified: true } })
  assert.equal(callback.searchParams.get('iss'), issuer)
  assert.equal(callback.searchParams.has('state'), false)
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedNonce: nonce, idTokenExpected: true })
  return { tokens, nonce }
}

function header (jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString())
}

test('discovery advertises what openid-client relies on', async () => {
  const registered = await registerClient({ client_name: 'node', redirect_uris: [redirectUri] })
  const config = await configFor(registered, {}, client.ClientSecretPost(registered.client_secret))
  const meta = config.serverMetadata()
  assert.equal(meta.issuer, issuer)
  assert.ok(meta.supportsPKCE())
  assert.equal(meta.authorization_response_iss_parameter_supported, true)
  assert.ok(meta.response_modes_supported.includes('form_post'))
  assert.ok(meta.id_token_signing_alg_values_supported.includes('RS256'))
})

test('web app: client_secret_post, RS256 ID token by default, userinfo, refresh, revocation', async () => {
  // Registered with the default client_secret_basic; openid-client's
  // ClientSecretPost must work all the same.
  const registered = await registerClient({ client_name: 'node web', redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token'] })
  assert.equal(registered.token_endpoint_auth_method, 'client_secret_basic')
  const config = await configFor(registered, {}, client.ClientSecretPost(registered.client_secret))
  const { tokens, nonce } = await login(config)

  assert.equal(header(tokens.id_token).alg, 'RS256')
  const claims = tokens.claims()
  assert.equal(claims.sub, 'user-1')
  assert.equal(claims.nonce, nonce)
  assert.equal(claims.iss, issuer)
  assert.equal(header(tokens.access_token).typ, 'at+jwt')

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  assert.equal(userinfo.email, 'ann@example.com')

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  assert.ok(refreshed.access_token)
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token)
  assert.equal(refreshed.claims().sub, 'user-1')

  await client.tokenRevocation(config, refreshed.refresh_token)
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token), (err) => err.error === 'invalid_grant')
})

test('ID token signed ES256 when the client registered it', async () => {
  const registered = await registerClient({ client_name: 'node es256', redirect_uris: [redirectUri], id_token_signed_response_alg: 'ES256' })
  const config = await configFor(registered, { id_token_signed_response_alg: 'ES256' }, client.ClientSecretPost(registered.client_secret))
  const { tokens } = await login(config, 'openid')
  assert.equal(header(tokens.id_token).alg, 'ES256')
  assert.equal(tokens.claims().sub, 'user-1')
})

test('CORS preflight from a page origin', async () => {
  const origin = 'https://spa.example'
  await registerClient({ client_name: 'node spa', redirect_uris: ['https://spa.example/cb'], token_endpoint_auth_method: 'none', allowed_cors_origins: [origin] })
  for (const path of ['/oauth2/token', '/oauth2/revoke', '/userinfo']) {
    const res = await fetch(issuer + path, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' }
    })
    assert.equal(res.status, 204, path)
    assert.equal(res.headers.get('access-control-allow-origin'), origin, path)
    const other = await fetch(issuer + path, { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } })
    assert.equal(other.headers.get('access-control-allow-origin'), null, path)
  }
  const disc = await fetch(issuer + '/.well-known/openid-configuration', { headers: { Origin: 'https://anyone.example' } })
  assert.equal(disc.headers.get('access-control-allow-origin'), '*')
})
