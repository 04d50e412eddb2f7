"""Single sign-on through OpenID Connect, with Authlib's Flask client (docs/web.md).

On when ``HS_OIDC_ISSUER`` is set (with ``HS_OIDC_CLIENT_ID`` and ``HS_OIDC_CLIENT_SECRET``): the
sign-in page offers "Sign in with SSO". It is the authorization code flow with PKCE (S256), a
state and a nonce; Authlib reads the provider's discovery document, checks the ID token's
signature (the provider's JWKS), issuer, audience, expiry and nonce. The person signs in as the
user whose email the provider vouches for (``email_verified``): SSO finds users, it never makes
them (an admin invites them, with their role and manager), and a disabled user stays out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import current_app, request

#: The Flask app's extension key of the registered client.
_KEY = "hs_oidc_client"


def sso_enabled() -> bool:
    return bool(current_app.config.get("OIDC_ISSUER"))


def client() -> Any:
    """This app's OpenID Connect client (registered on first use, from the app's config)."""
    extensions = current_app.extensions
    if _KEY not in extensions:
        # Imported here, when SSO is first used: Authlib's client brings joserfc and cryptography
        # (about 0.1 s of every process's start-up, the CLI's and the scoring run's included).
        from authlib.integrations.flask_client import OAuth

        config = current_app.config
        oauth = OAuth(current_app)
        oauth.register(
            "sso",
            client_id=config["OIDC_CLIENT_ID"],
            client_secret=config["OIDC_CLIENT_SECRET"],
            server_metadata_url=str(config["OIDC_ISSUER"]).rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email", "code_challenge_method": "S256", "timeout": 10},
        )
        extensions[_KEY] = oauth.create_client("sso")
    return extensions[_KEY]


def callback_url(path: str) -> str:
    """Where the provider sends the person back: ``PUBLIC_BASE_URL`` + path when set (behind a
    proxy the request's own host may not be the public one), else this request's host."""
    base = str(current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/") or request.host_url.rstrip("/")
    return base + path


def end_session_url(id_token: str, return_to: str) -> str | None:
    """Where to send the browser at sign-out to end the provider's session too (OpenID Connect
    RP-Initiated Logout: the provider's ``end_session_endpoint`` with the ID token as the hint and
    ``return_to``, a registered post-logout redirect URI); None when the provider offers none."""
    endpoint = client().load_server_metadata().get("end_session_endpoint")
    if not endpoint:
        return None
    client_id = current_app.config["OIDC_CLIENT_ID"]
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": return_to, "client_id": client_id})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
