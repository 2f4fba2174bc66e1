package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/scopes"
)

// Metadata is the discovery document (OpenID Connect Discovery 1.0 and RFC
// 8414 share it). It lists only what Latch really supports.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported,omitempty"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported"`
	// ClientIDMetadataDocumentSupported: https client ids are accepted
	// (draft-ietf-oauth-client-id-metadata-document).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// RegistrationEndpoint is listed only while registration is on.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
}

// Metadata builds the discovery document from the running configuration.
func (s *Server) Metadata() Metadata {
	iss := s.opt.Issuer
	claims := append([]string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "at_hash", "sid"}, scopes.SupportedClaims()...)
	return Metadata{
		Issuer:                                     iss,
		AuthorizationEndpoint:                      iss + endpoint.Authorize,
		TokenEndpoint:                              iss + endpoint.Token,
		UserinfoEndpoint:                           iss + endpoint.Userinfo,
		JWKSURI:                                    iss + endpoint.JWKS,
		RevocationEndpoint:                         iss + endpoint.Revoke,
		IntrospectionEndpoint:                      iss + endpoint.Introspect,
		ScopesSupported:                            s.scopes.Names(),
		ResponseTypesSupported:                     provider.ResponseTypes,
		ResponseModesSupported:                     []string{"query", "form_post"},
		GrantTypesSupported:                        provider.GrantTypes,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           provider.IDTokenSigningAlgs,
		TokenEndpointAuthMethodsSupported:          provider.TokenEndpointAuthMethods,
		TokenEndpointAuthSigningAlgValuesSupported: provider.ClientAssertionAlgs,
		RevocationEndpointAuthMethodsSupported:     provider.TokenEndpointAuthMethods,
		IntrospectionEndpointAuthMethodsSupported:  provider.IntrospectionEndpointAuthMethods,
		CodeChallengeMethodsSupported:              provider.CodeChallengeMethods,
		ClaimsSupported:                            claims,
		PromptValuesSupported:                      []string{"none", "login", "consent"},
		AuthorizationResponseIssParameterSupported: true,
		DPoPSigningAlgValuesSupported:              s.dpopAlgs(),
		PushedAuthorizationRequestEndpoint:         iss + endpoint.PAR,
		RequirePushedAuthorizationRequests:         s.opt.PARRequired,
		EndSessionEndpoint:                         iss + endpoint.Logout,
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
		ClientIDMetadataDocumentSupported:          s.opt.ClientMetadataDocuments,
		RegistrationEndpoint:                       s.opt.RegistrationEndpoint,
	}
}

func (s *Server) discovery(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.Metadata())
}

// jwks publishes every unretired public key; clients cache it briefly so a
// rotation is seen within minutes.
func (s *Server) jwks(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.JSON(http.StatusOK, s.keys.JWKS())
}
