import type { Node } from 'web-tree-sitter';
import { snippet, textOf } from './common.js';

/** The first ERROR or MISSING node in document order, with a message for it; null if the tree is clean. */
export function findSyntaxError(root: Node, src: string): { node: Node; message: string } | null {
  if (!root.hasError) return null;
  let node: Node = root;
  // Descend only into subtrees that contain an error; a clean tree costs nothing here.
  for (;;) {
    if (node.isMissing) {
      return { node, message: `Syntax error: missing "${node.type}"` };
    }
    if (node.isError) {
      const text = snippet(textOf(src, node).trim(), 30);
      return {
        node,
        message: text ? `Syntax error: unexpected "${text}"` : 'Syntax error: unexpected end of input',
      };
    }
    let next: Node | null = null;
    for (const child of node.children) {
      if (child.isMissing || child.hasError) {
        next = child;
        break;
      }
    }
    if (!next) return { node, message: 'Syntax error' };
    node = next;
  }
}
