/**
 * The unit conversion table of `analyze`: temperatures and pressures.
 * Each unit is an affine map to its dimension's base unit (°C, Pa), so any
 * two units of one dimension convert into each other.
 *
 * @module
 */

interface UnitDef {
  /** How the unit is written on converted samples. */
  symbol: string;
  dimension: "temperature" | "pressure";
  /** base = value * factor + shift */
  factor: number;
  shift: number;
}

const UNITS: readonly (UnitDef & { aliases: readonly string[] })[] = [
  {
    symbol: "°C",
    dimension: "temperature",
    factor: 1,
    shift: 0,
    aliases: ["c", "degc", "celsius"],
  },
  {
    symbol: "°F",
    dimension: "temperature",
    factor: 5 / 9,
    shift: -32 * 5 / 9,
    aliases: ["f", "degf", "fahrenheit"],
  },
  { symbol: "K", dimension: "temperature", factor: 1, shift: -273.15, aliases: ["kelvin"] },
  { symbol: "Pa", dimension: "pressure", factor: 1, shift: 0, aliases: ["pascal"] },
  { symbol: "hPa", dimension: "pressure", factor: 100, shift: 0, aliases: [] },
  { symbol: "kPa", dimension: "pressure", factor: 1_000, shift: 0, aliases: [] },
  { symbol: "MPa", dimension: "pressure", factor: 1_000_000, shift: 0, aliases: [] },
  { symbol: "mbar", dimension: "pressure", factor: 100, shift: 0, aliases: [] },
  { symbol: "bar", dimension: "pressure", factor: 100_000, shift: 0, aliases: [] },
  { symbol: "psi", dimension: "pressure", factor: 6_894.757293168, shift: 0, aliases: [] },
  { symbol: "atm", dimension: "pressure", factor: 101_325, shift: 0, aliases: [] },
];

const BY_NAME = new Map<string, UnitDef>();
for (const unit of UNITS) {
  for (const name of [unit.symbol, ...unit.aliases]) BY_NAME.set(name.toLowerCase(), unit);
  BY_NAME.set(unit.symbol.replace("°", "deg").toLowerCase(), unit);
}

/** Every unit symbol the table knows (aliases such as `degF` or `F` also work). */
export const KNOWN_UNITS: readonly string[] = UNITS.map((u) => u.symbol);

/** The table entry for a unit name, case-insensitive; `undefined` when unknown. */
export function findUnit(name: string): UnitDef | undefined {
  return BY_NAME.get(name.trim().toLowerCase());
}

/** Converts `value` from one unit to another. */
export type Conversion = (value: number) => number;

/**
 * The conversion between two units, or a reason why there is none.
 *
 * @example
 * ```ts
 * import { conversion } from "./_units.ts";
 * const c = conversion("°F", "°C");
 * if (typeof c === "function") c(212); // 100
 * ```
 */
export function conversion(from: string, to: string): Conversion | string {
  const a = findUnit(from), b = findUnit(to);
  if (!a) return `Unknown unit "${from}"`;
  if (!b) return `Unknown unit "${to}"`;
  if (a.dimension !== b.dimension) {
    return `Cannot convert "${from}" (${a.dimension}) to "${to}" (${b.dimension})`;
  }
  if (a === b) return (v) => v;
  // to base, then from base: v_b = ((v * fa + sa) - sb) / fb
  const factor = a.factor / b.factor, shift = (a.shift - b.shift) / b.factor;
  return (v) => v * factor + shift;
}

/** The canonical symbol of a unit name (`degF` → `°F`), or the name itself when unknown. */
export function unitSymbol(name: string): string {
  return findUnit(name)?.symbol ?? name;
}
