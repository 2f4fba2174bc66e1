// The README's pure-SPA snippet, run as a page would run it: PKCE with
// WebCrypto, fetch() with the page's Origin, no client library at all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { issuer, registerClient, signIn } from './latch.js'

const origin = 'https://spa.example'
// A browser adds Origin itself; Node's fetch does not.
const pageFetch = (url, init = {}) => fetch(url, { ...init, headers: { ...init.headers, Origin: origin } })

// --- README snippet (SPA) starts ---
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')

async function startLogin (clientId, redirectUri) {
  const meta = await (await pageFetch(`${issuer}/.well-known/openid-configuration`)).json()
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)))
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)))
  const url = new URL(meta.authorization_endpoint)
  url.search = new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code',
    scope: 'openid offline_access', code_challenge: challenge, code_challenge_method: 'S256'
  })
  return { meta, verifier, url } // keep verifier in sessionStorage, then location.assign(url)
}

async function finishLogin (meta, clientId, redirectUri, verifier, callbackUrl) {
  const params = new URL(callbackUrl).searchParams
  if (params.get('iss') !== meta.issuer) throw new Error('response from another issuer')
  const res = await pageFetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri, client_id: clientId, code_verifier: verifier })
  })
  if (!res.ok) throw new Error(`token: ${res.status}`)
  return { tokens: await res.json(), cors: res.headers.get('access-control-allow-origin') }
}
// --- README snippet (SPA) ends ---

test('SPA: public client with PKCE in the browser, CORS on token and userinfo', async () => {
  const redirectUri = 'https://spa.example/cb'
  const registered = await registerClient({
    client_name: 'spa', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'], allowed_cors_origins: [origin]
  })
  const { meta, verifier, url } = await startLogin(registered.client_id, redirectUri)
  const callback = await signIn(url)
  const { tokens, cors } = await finishLogin(meta, registered.client_id, redirectUri, verifier, callback)
  assert.equal(cors, origin)
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token)

  const ui = await pageFetch(meta.userinfo_endpoint, { headers: { Authorization: `Bearer ${tokens.access_token}` } })
  assert.equal(ui.status, 200)
  assert.equal(ui.headers.get('access-control-allow-origin'), origin)
  assert.equal((await ui.json()).sub, 'user-1')

  const jwks = await pageFetch(meta.jwks_uri)
  assert.equal(jwks.headers.get('access-control-allow-origin'), '*')
})
