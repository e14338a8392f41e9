export { Stack } from './stack.js'
export type { Layer, Handler } from './layer.js'
