// The /scan page: the scanner, then the battery's passport on this service
// (the label's signature is kept, so the passport can check the label too).

import { mountScanner, passportPath } from "./scanner.js";

mountScanner(document.getElementById("scanner"), {
  action: "Open passport",
  onResult: (result) => window.location.assign(passportPath(result)),
});
