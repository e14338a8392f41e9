// The one rule for workload and resource names (metadata.name, namespaces, createMesh service).

/** Lowercase DNS-style names: letters, digits, "-" and ".", starting and ending alphanumeric. */
export const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/
