// Route templates for a sidecar's inbound metrics. An in-process mesh reads the template from the
// framework (`/users/:id`); a sidecar cannot see the app's router, so the operator lists the routes,
// as Linkerd's ServiceProfile does: `/users/:id` matches one segment for `:id`, a final `/*` the
// rest of the path. Compiled once; the first template that matches names the request's route, and a
// path none matches is counted under "" (never under the raw path: label values stay bounded).
import { invalidArg } from '../errors/index.js'

const SEGMENT = /^[A-Za-z0-9._~!$&'()+,;=@%-]+$/

function compile(template: string, what: string): RegExp {
  if (!template.startsWith('/')) invalidArg(what, `"${template}" must start with /`)
  const parts = template.split('/').slice(1)
  const out = parts.map((p, i) => {
    if (p === '*' && i === parts.length - 1) return '(?:/.*)?'
    if (/^:[A-Za-z_][A-Za-z0-9_]*$/.test(p)) return '/[^/]+'
    if (p === '' && i === parts.length - 1) return '/'
    if (!SEGMENT.test(p)) invalidArg(what, `"${template}": segment "${p}" is not a path segment, a :name or a final *`)
    return `/${p.replace(/[.()+$]/g, (c) => `\\${c}`)}`
  })
  return new RegExp(`^${out.join('')}$`)
}

/** The route of a request path ("/users/42" → "/users/:id"), or "" when no template matches. */
export function routeTemplates(templates: readonly string[], what = 'routes'): (path: string) => string {
  const compiled = templates.map((t, i) => ({ t, re: compile(t, `${what}[${i}]`) }))
  return (path) => {
    const q = path.indexOf('?')
    const p = q < 0 ? path : path.slice(0, q)
    for (const c of compiled) if (c.re.test(p)) return c.t
    return ''
  }
}
