// Checks a passport's record proof in the browser, with WebCrypto alone:
//   leaf hash        RFC 6962 §2.1: SHA-256(0x00 ‖ entry bytes)
//   inclusion        RFC 9162 §2.1.3.2: the audit path from the leaf to the root
//   checkpoint       C2SP tlog-checkpoint: origin, tree size, base64 root (note text lines 1-3)
//   signature        C2SP signed-note, Ed25519 (type 0x01) over the note text
// The same steps as ledger.merkle.verify_inclusion and ledger.checkpoint.verify_checkpoint,
// so a page can say "verified" without trusting the server's own word for it.

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;
const HASH_SIZE = 32;
const ED25519 = 0x01; // signed-note signature type
const KEY_HASH_SIZE = 4;
const PUBLIC_KEY_SIZE = 32;
const SIGNATURE_SIZE = 64;
const SIGNATURE_LINE = "\u2014 "; // EM DASH, SPACE
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The record does not verify; the message says why, in words for the page. */
export class ProofError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProofError";
  }
}

/** This browser cannot run the check at all (no WebCrypto, e.g. over plain http). */
export class UncheckableError extends Error {
  constructor(message) {
    super(message);
    this.name = "UncheckableError";
  }
}

// --- bytes ---

const utf8 = (text) => new TextEncoder().encode(text);

export function toBase64(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Strict base64: canonical padding and spare bits, so one text means one byte string. */
export function fromBase64(text, what = "a value") {
  if (typeof text !== "string" || !BASE64.test(text)) {
    throw new ProofError(`${what} is not valid base64.`);
  }
  const binary = atob(text);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  // A changed spare bit would decode to the same bytes: refuse such spellings.
  if (toBase64(bytes) !== text) throw new ProofError(`${what} is not canonical base64.`);
  return bytes;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new UncheckableError(
      "This browser offers record checking only over a secure (https) connection.",
    );
  }
  return s;
}

async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

export const leafHash = (entry) => sha256(concat(Uint8Array.of(LEAF_PREFIX), entry));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(NODE_PREFIX), left, right));

// --- RFC 9162 §2.1.3.2 ---

/**
 * Verify that `leaf` (a leaf hash) is entry `index` of the tree of `size` entries whose
 * root is `root`, given the audit path `path`. Throws ProofError; returns nothing.
 * Indices are BigInt so trees beyond 2^53 entries are handled exactly.
 */
export async function verifyInclusion(leaf, index, size, path, root) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn) throw new ProofError("The record's position lies outside the signed log.");
  let r = leaf;
  for (const p of path) {
    if (p.length !== HASH_SIZE) throw new ProofError("A hash of the audit path has the wrong length.");
    if (sn === 0n) throw new ProofError("The audit path is longer than the signed log allows.");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      // A right edge: skip the levels where this node has no sibling.
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("The audit path is too short for the signed log.");
  if (!equal(r, root)) {
    throw new ProofError(
      "The record is not in the signed log: its audit path does not lead to the signed root hash.",
    );
  }
}

// --- C2SP signed-note and tlog-checkpoint ---

/** Split a signed note into its text and signature lines ({name, keyHash, signature}). */
export function parseNote(note) {
  if (typeof note !== "string") throw new ProofError("The checkpoint is missing.");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new ProofError("The checkpoint is malformed: it has no signatures.");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) throw new ProofError("The checkpoint's signature block is malformed.");
  const signatures = block
    .slice(0, -1)
    .split("\n")
    .map((line) => {
      if (!line.startsWith(SIGNATURE_LINE)) {
        throw new ProofError("The checkpoint has a malformed signature line.");
      }
      const [name, encoded, ...rest] = line.slice(SIGNATURE_LINE.length).split(" ");
      if (!name || rest.length) throw new ProofError("The checkpoint has a malformed signature line.");
      const raw = fromBase64(encoded, "A checkpoint signature");
      if (raw.length <= KEY_HASH_SIZE) throw new ProofError("A checkpoint signature is too short.");
      const keyHash = new DataView(raw.buffer).getUint32(0); // big-endian
      return { name, keyHash, signature: raw.slice(KEY_HASH_SIZE) };
    });
  return { text, signatures };
}

/** The checkpoint's origin, tree size (BigInt) and root hash (note text lines 1-3). */
export function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || lines.at(-1) !== "" || !lines[0]) {
    throw new ProofError("The checkpoint is malformed: it needs an origin, a size and a root.");
  }
  if (!DECIMAL.test(lines[1])) throw new ProofError("The checkpoint's tree size is not a number.");
  const root = fromBase64(lines[2], "The checkpoint's root hash");
  if (root.length !== HASH_SIZE) throw new ProofError("The checkpoint's root hash has the wrong length.");
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

/** A verifier key `<name>+<8 hex key hash>+<base64(0x01 ‖ 32-byte key)>`, hash checked. */
export async function parseVerifierKey(key) {
  const first = key.indexOf("+");
  const second = key.indexOf("+", first + 1);
  if (first <= 0 || second < 0) throw new ProofError("The log key is malformed.");
  const name = key.slice(0, first);
  const hashHex = key.slice(first + 1, second);
  if (!/^[0-9a-fA-F]{8}$/.test(hashHex)) throw new ProofError("The log key's hash is malformed.");
  const raw = fromBase64(key.slice(second + 1), "The log key");
  if (raw.length !== 1 + PUBLIC_KEY_SIZE || raw[0] !== ED25519) {
    throw new ProofError("The log key is not an Ed25519 key.");
  }
  // signed-note key hash: SHA-256(name ‖ "\n" ‖ type ‖ key)[:4]
  const digest = await sha256(concat(utf8(name), utf8("\n"), raw));
  const keyHash = new DataView(digest.buffer).getUint32(0);
  if (keyHash !== Number.parseInt(hashHex, 16)) {
    throw new ProofError("The log key's hash does not match the key.");
  }
  return { name, keyHash, publicKey: raw.slice(1), id: `${name}+${hashHex.toLowerCase()}` };
}

async function ed25519Verify(publicKey, signature, message) {
  let key;
  try {
    key = await subtle().importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    if (error?.name === "NotSupportedError") return null; // the browser lacks Ed25519
    throw new ProofError("The log key is not a valid Ed25519 key.");
  }
  return subtle().verify({ name: "Ed25519" }, key, signature, message);
}

/**
 * Check the note's signatures by the given log keys (as signed-note's Open does: a known
 * key's signature that fails rejects the note; at least one known key must have signed).
 * Returns {signature: "checked" | "not-checked", keys: [ids]}; throws ProofError.
 */
export async function verifyNote(note, logKeys) {
  const { text, signatures } = parseNote(note);
  const keys = await Promise.all((logKeys || []).map(parseVerifierKey));
  const message = utf8(text);
  let checked = 0;
  let matched = 0;
  const ids = [];
  for (const key of keys) {
    for (const sig of signatures) {
      if (sig.name !== key.name || sig.keyHash !== key.keyHash) continue;
      matched += 1;
      ids.push(key.id);
      if (sig.signature.length !== SIGNATURE_SIZE) {
        throw new ProofError("The log's signature on the checkpoint has the wrong length.");
      }
      const ok = await ed25519Verify(key.publicKey, sig.signature, message);
      if (ok === false) throw new ProofError("The log's signature on the checkpoint does not verify.");
      if (ok === true) checked += 1;
    }
  }
  if (!matched) throw new ProofError("The checkpoint is not signed by the log's key.");
  return { signature: checked ? "checked" : "not-checked", keys: ids, text };
}

// --- the passport ---

/** Whether an entry's event names `code`: an item of its data, or a key of its `prev`. */
function namesItem(body, code) {
  if (body?.prev && typeof body.prev === "object" && Object.hasOwn(body.prev, code)) return true;
  const walk = (node) => {
    if (node === code) return true;
    if (Array.isArray(node)) return node.some(walk);
    if (node && typeof node === "object") return Object.values(node).some(walk);
    return false;
  };
  return walk(body?.data);
}

/**
 * Verify a passport document's `proof` against its own code. Resolves to
 * {signature, keys, entry (parsed), index, size, checkpoint}; throws ProofError when the
 * record does not verify, UncheckableError when this browser cannot check it.
 */
export async function verifyPassport(doc) {
  const proof = doc?.proof;
  if (!proof || !proof.checkpoint) {
    throw new ProofError("No signed checkpoint covers this record yet, so it cannot be checked.");
  }
  subtle(); // fail early, and as "cannot check", without WebCrypto
  const entryBytes = fromBase64(proof.entry, "The record");
  const leaf = await leafHash(entryBytes);
  if (proof.leaf_hash !== undefined && !equal(leaf, fromBase64(proof.leaf_hash, "The leaf hash"))) {
    throw new ProofError("The record's fingerprint (leaf hash) does not match the record.");
  }
  const path = (proof.hashes || []).map((h, i) => fromBase64(h, `Hash ${i + 1} of the audit path`));

  // 1. The signature: the checkpoint is the log's own statement of its size and root.
  const signed = await verifyNote(proof.checkpoint, proof.log_keys);
  // 2. The checkpoint text names the tree the proof is about.
  const checkpoint = parseCheckpoint(signed.text);
  if (BigInt(proof.tree_size) !== checkpoint.size) {
    throw new ProofError(
      `The proof is for a log of ${proof.tree_size} entries, but the checkpoint signs ${checkpoint.size}.`,
    );
  }
  // 3. The record is entry `index` of that tree.
  await verifyInclusion(leaf, proof.index, checkpoint.size, path, checkpoint.root);
  // 4. The record is this item's event, at the position the proof names.
  let entry;
  try {
    entry = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(entryBytes));
  } catch {
    throw new ProofError("The record is not readable JSON.");
  }
  if (entry.seq !== proof.index) {
    throw new ProofError(`The record says it is entry ${entry.seq}, but the proof is for entry ${proof.index}.`);
  }
  if (!namesItem(entry.body, doc.code)) {
    throw new ProofError(`The proven record is not an event of ${doc.code}.`);
  }
  return {
    signature: signed.signature,
    keys: signed.keys,
    entry,
    index: proof.index,
    size: checkpoint.size,
    checkpoint,
  };
}
