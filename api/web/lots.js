// Lot identifiers made in the browser, for the outputs of a recycling step.

// Lot ids: "LOT-" + 12 characters of Crockford base32 + a Luhn mod 32 check character,
// as schemas/lots.py defines them.
const LOT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LOT_BODY = 12;

/** A new lot id (random body, check character as schemas.lots.new_lot_id computes it). */
export function newLotId() {
  const random = crypto.getRandomValues(new Uint8Array(LOT_BODY));
  const body = [...random].map((b) => LOT_ALPHABET[b & 31]).join("");
  let total = 0;
  let double = true;
  for (const ch of [...body].reverse()) {
    const value = LOT_ALPHABET.indexOf(ch) * (double ? 2 : 1);
    total += Math.floor(value / 32) + (value % 32);
    double = !double;
  }
  return `LOT-${body}${LOT_ALPHABET[(32 - (total % 32)) % 32]}`;
}
