// A small Sankey diagram in SVG for the service's flow data ({nodes, links}).
// Written here rather than taken from d3-sankey because the flows between roles have
// cycles (recovered material goes back to battery makers), which d3-sankey refuses:
// here a link that points backwards is drawn as a loop under the diagram.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 760;
const HEIGHT = 380;
const NODE_WIDTH = 14;
const NODE_GAP = 18;
const LABEL_SPACE = 120; // room for the last column's labels
const LOOP_GAP = 16; // distance between loops under the diagram
const LOOP_RADIUS = 30; // how far a loop swings out beside its nodes
const COLUMN_MIN = 150; // wider diagrams for many columns, so labels fit between them
// Eight colours distinguishable in common colour-vision deficiencies (Okabe-Ito), darkened
// where needed; the table beside the diagram carries every number, so colour is only a help.
const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#56b4e9", "#e69f00", "#5e5e5e", "#8c6d00"];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

/**
 * Columns for the nodes: the longest path from a source over the links that do not close a
 * cycle. Which links close one is decided by the greedy ordering of Eades, Lin and Smyth
 * (1993), weighted by value: sinks go last, sources first, otherwise the node that sends
 * most more than it receives (battery makers before recyclers). A link against that order
 * is drawn as a loop, so it is the small flow back up the chain, not the main stream.
 * Returns {column per node, the set of backward link indices}.
 */
export function columns(nodeCount, links) {
  const weight = (link) => link.value ?? 1;
  const remaining = new Set(Array.from({ length: nodeCount }, (_, n) => n));
  const live = (link) => remaining.has(link.source) && remaining.has(link.target) && link.source !== link.target;
  const sent = (n) => links.filter((l) => l.source === n && live(l)).reduce((s, l) => s + weight(l), 0);
  const received = (n) => links.filter((l) => l.target === n && live(l)).reduce((s, l) => s + weight(l), 0);
  const first = [];
  const last = [];
  const take = (n, list, atStart) => {
    remaining.delete(n);
    if (atStart) list.unshift(n);
    else list.push(n);
  };
  while (remaining.size) {
    let changed = true;
    while (changed) {
      changed = false;
      for (const n of [...remaining]) {
        if (!sent(n)) { take(n, last, true); changed = true; } else if (!received(n)) { take(n, first, false); changed = true; }
      }
    }
    if (!remaining.size) break;
    const [best] = [...remaining].sort((a, b) => (sent(b) - received(b)) - (sent(a) - received(a)) || a - b);
    take(best, first, false);
  }
  const position = new Array(nodeCount);
  [...first, ...last].forEach((n, i) => { position[n] = i; });
  const back = new Set();
  links.forEach((link, i) => {
    if (link.source !== link.target && position[link.source] > position[link.target]) back.add(i);
  });
  const column = new Array(nodeCount).fill(0);
  // Longest path: relax forward links until nothing changes (at most nodeCount rounds).
  for (let round = 0; round < nodeCount; round += 1) {
    let changed = false;
    links.forEach((link, i) => {
      if (back.has(i) || link.source === link.target) return;
      if (column[link.target] < column[link.source] + 1) {
        column[link.target] = column[link.source] + 1;
        changed = true;
      }
    });
    if (!changed) break;
  }
  return { column, back };
}

/** Positions of nodes and links for `data` ({nodes: [{name}], links: [{source, target, value}]}). */
export function layout(data) {
  const nodes = data.nodes.map((node, i) => ({ ...node, index: i, in: 0, out: 0 }));
  const links = data.links
    .map((link, i) => ({ ...link, index: i, value: Math.max(0, Number(link.value) || 0) }))
    .filter((link) => link.value > 0 && link.source !== link.target);
  for (const link of links) {
    nodes[link.source].out += link.value;
    nodes[link.target].in += link.value;
  }
  const used = nodes.filter((n) => n.in > 0 || n.out > 0);
  if (!used.length) return { nodes: [], links: [], width: WIDTH, height: HEIGHT, loops: 0 };
  const { column, back } = columns(nodes.length, links);
  links.forEach((link, i) => { link.back = back.has(i); });
  const lastColumn = Math.max(...used.map((n) => column[n.index]));
  const byColumn = Array.from({ length: lastColumn + 1 }, () => []);
  for (const node of used) {
    node.column = column[node.index];
    node.size = Math.max(node.in, node.out);
    byColumn[node.column].push(node);
  }
  // One scale for every column, so equal values look equal everywhere.
  const scale = Math.min(...byColumn.filter((c) => c.length).map((c) =>
    (HEIGHT - NODE_GAP * (c.length - 1)) / c.reduce((s, n) => s + n.size, 0)));
  const width = Math.max(WIDTH, lastColumn * COLUMN_MIN + LABEL_SPACE + NODE_WIDTH);
  const step = lastColumn ? (width - LABEL_SPACE - NODE_WIDTH) / lastColumn : 0;
  for (const col of byColumn) {
    const total = col.reduce((s, n) => s + n.size * scale, 0) + NODE_GAP * (col.length - 1);
    let y = (HEIGHT - total) / 2;
    for (const node of col) {
      node.x = node.column * step;
      node.y = y;
      node.h = Math.max(1, node.size * scale);
      y += node.h + NODE_GAP;
    }
  }
  // Stack links on each node: outgoing ordered by their target's height, incoming by source's.
  const outgoing = new Map(used.map((n) => [n.index, 0]));
  const incoming = new Map(used.map((n) => [n.index, 0]));
  const order = (a, b) => a - b;
  const sorted = (key) => [...links].sort((a, b) => order(nodes[a[key]].y, nodes[b[key]].y));
  for (const link of sorted("target")) {
    const s = nodes[link.source];
    link.width = Math.max(1, link.value * scale);
    link.sy = s.y + outgoing.get(s.index) + link.width / 2;
    outgoing.set(s.index, outgoing.get(s.index) + link.value * scale);
  }
  for (const link of sorted("source")) {
    const t = nodes[link.target];
    link.ty = t.y + incoming.get(t.index) + link.width / 2;
    incoming.set(t.index, incoming.get(t.index) + link.value * scale);
  }
  let loops = 0;
  for (const link of links.filter((l) => l.back)) {
    loops += 1;
    link.loopY = HEIGHT + loops * LOOP_GAP + link.width / 2;
  }
  const height = HEIGHT + (loops ? loops * LOOP_GAP + Math.max(...links.filter((l) => l.back).map((l) => l.width)) : 0);
  return { nodes: used, links, width, height, loops, allNodes: nodes };
}

function linkPath(link, source, target) {
  const x0 = source.x + NODE_WIDTH;
  const x1 = target.x;
  if (!link.back) {
    const mid = (x0 + x1) / 2;
    return `M${x0},${link.sy}C${mid},${link.sy} ${mid},${link.ty} ${x1},${link.ty}`;
  }
  // Backwards: out to the right, down under the diagram, back left, up into the target.
  const r = LOOP_RADIUS;
  return `M${x0},${link.sy}C${x0 + r},${link.sy} ${x0 + r},${link.loopY} ${x0},${link.loopY}`
    + `L${x1},${link.loopY}C${x1 - r},${link.loopY} ${x1 - r},${link.ty} ${x1},${link.ty}`;
}

/**
 * Draw the diagram of `data` into `container` (replacing what was there). `label(name)`
 * gives a node's words and `format(value)` a link's value with its unit.
 */
export function drawSankey(container, data, { label = String, format = String, title = "Flows" } = {}) {
  const laid = layout(data);
  const left = laid.loops ? LOOP_RADIUS + 4 : 4; // room for loops entering a first-column node
  const root = svg("svg", {
    viewBox: `${-left} -4 ${laid.width + left + 4} ${laid.height + 8}`, role: "img", class: "sankey",
    "aria-label": `${title}. The table lists the same flows.`,
  });
  if (!laid.nodes.length) {
    root.setAttribute("viewBox", `0 0 ${WIDTH} 60`);
    root.append(svg("text", { x: 8, y: 34, class: "empty" }, "No flows match these filters."));
    container.replaceChildren(root);
    return root;
  }
  const colour = (i) => PALETTE[i % PALETTE.length];
  const linkGroup = svg("g", { class: "links" });
  for (const link of laid.links) {
    const source = laid.allNodes[link.source];
    const target = laid.allNodes[link.target];
    linkGroup.append(svg("path", {
      class: "link", d: linkPath(link, source, target), stroke: colour(source.index),
      "stroke-width": link.width, "data-source": source.name, "data-target": target.name,
    }, svg("title", {}, `${label(source.name)} \u2192 ${label(target.name)}: ${format(link.value)}`)));
  }
  const nodeGroup = svg("g", { class: "nodes" });
  for (const node of laid.nodes) {
    // Labels right of their node: the last column has LABEL_SPACE kept free for them.
    nodeGroup.append(svg("g", { class: "node" },
      svg("rect", { x: node.x, y: node.y, width: NODE_WIDTH, height: node.h, fill: colour(node.index) }),
      svg("text", { x: node.x + NODE_WIDTH + 4, y: node.y + node.h / 2, dy: "0.35em" }, label(node.name)),
      svg("title", {}, `${label(node.name)}: in ${format(node.in)}, out ${format(node.out)}`)));
  }
  root.append(linkGroup, nodeGroup);
  container.replaceChildren(root);
  return root;
}
