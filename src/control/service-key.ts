// The key of a service in the registry's EndpointMap: "<namespace>/<name>". Neither part can hold
// a "/" (both are DNS-style names), so the key splits back unambiguously. A key without "/" is a
// name in the default namespace (the format before namespaces were keyed, still found in caches).

export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`
}

export function parseServiceKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/')
  return slash < 0 ? { namespace: 'default', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) }
}
