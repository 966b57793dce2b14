// The series of one metric family, found by label values. Several series
// are updated per Hello, so a lookup builds no key: a family without labels
// has its one series at hand, pinned labels (a caller on a hot path keeps
// one object per series) remember the series they last found, and any
// other walks one Map per label (values as they are, so no separator can
// make two tuples collide). Naming and rendering the family is metrics.ts's.

/** Label values by label name, as metrics.ts's Labels. */
type LabelValues = Readonly<Record<string, string>>;

interface Series<T> {
  readonly values: string[];
  readonly state: T;
}

/** Where pinned labels remember the series they last found, and whose it is. */
const PIN = Symbol('series pin');

interface Pin {
  owner: SeriesMap<unknown> | null;
  series: Series<unknown> | null;
}

/**
 * `labels`, frozen, with a slot that remembers the series they last found
 * in a family: updating that family again with them skips the checks and
 * the walk. Frozen, so the values that series was found by cannot change.
 * For a caller that updates the same series often (the router, per Hello).
 */
export function pinnedLabels<L extends LabelValues>(labels: L): Readonly<L> {
  const pin: Pin = { owner: null, series: null };
  // A symbol, not enumerable: invisible to the label checks and to rendering.
  Object.defineProperty(labels, PIN, { value: pin });
  return Object.freeze(labels);
}

/** One level per label; the last level's values are series. */
type Level<T> = Map<string, Level<T> | Series<T>>;

/** Label values of one metric, keyed by their values in declaration order. */
export class SeriesMap<T> {
  /** In creation order: the order a scrape renders them in. */
  private readonly order: Series<T>[] = [];
  private readonly root: Level<T> = new Map();
  /** The family's only series when it has no labels. */
  private unlabelled: Series<T> | undefined;

  /**
   * `badLabels` makes the error for labels that are not exactly
   * `labelNames` (metrics.ts's MetricsError LABELS).
   */
  constructor(
    private readonly labelNames: readonly string[],
    private readonly fresh: () => T,
    private readonly badLabels: (labels: LabelValues) => Error,
  ) {}

  /** The label values in declaration order; throws when the names are not exactly the declared ones. */
  keyOf(labels: LabelValues): string[] {
    this.check(labels);
    return this.labelNames.map((name) => String(labels[name]));
  }

  /** `undefined`: no labels (a family declared without any). */
  get(labels: LabelValues | undefined): T {
    return this.find(labels, true)!.state;
  }

  peek(labels: LabelValues | undefined): T | undefined {
    return this.find(labels, false)?.state;
  }

  *entries(): IterableIterator<[string[], T]> {
    for (const { values, state } of this.order) yield [values, state];
  }

  /**
   * Exactly the declared names, each with a value: counted rather than
   * compared as key sets, so checking allocates nothing.
   */
  private check(labels: LabelValues): void {
    let given = 0;
    for (const _ in labels) given++;
    const names = this.labelNames;
    if (given !== names.length) throw this.badLabels(labels);
    for (let i = 0; i < names.length; i++)
      if (labels[names[i]!] === undefined) throw this.badLabels(labels);
  }

  private find(labels: LabelValues | undefined, create: boolean): Series<T> | undefined {
    const names = this.labelNames;
    if (labels === undefined) {
      if (names.length > 0) throw this.badLabels({});
      return this.only(create);
    }
    // (Optional chaining: a JavaScript caller may pass null.)
    const pin = (labels as { [PIN]?: Pin } | null)?.[PIN];
    if (pin !== undefined && pin.owner === this) return pin.series as Series<T>;
    const series = this.walk(labels, create);
    if (pin !== undefined && series !== undefined) {
      pin.owner = this as SeriesMap<unknown>;
      pin.series = series;
    }
    return series;
  }

  private walk(labels: LabelValues, create: boolean): Series<T> | undefined {
    this.check(labels);
    const names = this.labelNames;
    if (names.length === 0) return this.only(create);
    let level = this.root;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const value = String(labels[names[i]!]);
      let next = level.get(value) as Level<T> | undefined;
      if (next === undefined) {
        if (!create) return undefined;
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const value = String(labels[names[last]!]);
    let series = level.get(value) as Series<T> | undefined;
    if (series === undefined && create) {
      series = this.add(this.keyOf(labels));
      level.set(value, series);
    }
    return series;
  }

  /** The one series of a family without labels. */
  private only(create: boolean): Series<T> | undefined {
    if (this.unlabelled === undefined && create) this.unlabelled = this.add([]);
    return this.unlabelled;
  }

  private add(values: string[]): Series<T> {
    const series = { values, state: this.fresh() };
    this.order.push(series);
    return series;
  }
}
