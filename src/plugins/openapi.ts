/**
 * The OpenAPI document, built by @fastify/swagger from the route schemas, and the interactive
 * reference at /docs (@fastify/swagger-ui), which also serves the document at /docs/json and
 * /docs/yaml. Registered before any route so every route's schema is collected.
 */
import fp from 'fastify-plugin'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'

const DOCS_PREFIX = '/docs'

/**
 * The reference page loads its scripts, styles and images from this server only (the assets
 * are bundled in @fastify/swagger-ui) and talks to this server only, so it works air-gapped
 * and a browser refuses anything else. No upgrade-insecure-requests: the server often runs on
 * plain http on a private address.
 */
const DOCS_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self'"
].join('; ')

export default fp(async (fastify) => {
  await fastify.register(fastifySwagger, {
    openapi: {
      info: { title: 'chartcast', description: 'Release-channel deploy server: publish Helm releases, promote them through channels, serve license-checked specs.', version: '0.1.0' },
      components: {
        securitySchemes: {
          publisherToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (HS256, AUTH_SECRET)' },
          license: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT license (ES256, RS256 or EdDSA)' },
          operatorBasic: { type: 'http', scheme: 'basic', description: 'user "license", password the license JWT' },
          session: { type: 'apiKey', in: 'cookie', name: 'chartcast_session', description: 'The dashboard session (POST /auth/session or single sign-on); a change (not GET/HEAD) must send the Origin of this server' }
        }
      }
    }
  })
  await fastify.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: DOCS_CSP,
    theme: { title: 'chartcast API' },
    // Swagger UI's default validator badge would fetch from validator.swagger.io.
    uiConfig: { validatorUrl: null }
  })
}, { name: 'chartcast-openapi' })
