// The right column's charts, drawn by Apache ECharts on a canvas: one fixed-height box each
// (rem, so zooming scales it and nothing below moves), resized with its box, re-created in
// the dark theme when the page turns dark, disposed when it leaves the page.

import * as echarts from "echarts";
import { localTime } from "../filters.js";
import { t } from "../i18n.js";
import { html, useEffect, useRef } from "../lib.js";
import { formatMs } from "../model.js";

const FONT = 11;

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export function EChart({ option, theme, testid, empty }) {
  const box = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    const c = echarts.init(box.current, theme === "dark" ? "dark" : null, { renderer: "canvas" });
    chart.current = c;
    const resize = () => c.resize();
    const observer = new ResizeObserver(resize); // the column, the window, the zoom
    observer.observe(box.current);
    window.addEventListener("resize", resize);
    return () => {
      observer.disconnect();
      window.removeEventListener("resize", resize);
      c.dispose();
      chart.current = null;
    };
  }, [theme]);
  useEffect(() => {
    if (!chart.current) return;
    if (empty || !option) chart.current.clear(); // the box keeps its size and says why
    else chart.current.setOption(option, { notMerge: true });
  }, [option, theme, empty]);
  return html`
    <div class="chart-box">
      <div class="chart" ref=${box} data-testid=${testid}></div>
      ${empty && html`<p class="chart-empty muted">${t("chart.noData")}</p>`}
    </div>`;
}

function base(extra) {
  return {
    backgroundColor: "transparent",
    animationDuration: 300,
    textStyle: { fontSize: FONT },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true },
    ...extra,
  };
}

function bucketLabel(iso, interval) {
  const full = localTime(iso, false); // MM-DD HH:mm
  if (interval === "day") return full.slice(0, 5);
  if (interval === "hour") return full;
  return full.slice(6);
}

const msAxis = { type: "value", axisLabel: { fontSize: FONT, formatter: (v) => formatMs(v) },
                 splitNumber: 3 };

// Executions per bucket, stacked: succeeded, failed (red), stopped or still running (grey).
export function overTimeOption(model) {
  const parts = [["succeeded", "chart.succeeded", undefined], ["failed", "chart.failures", cssVar("--err")],
                 ["other", "chart.other", cssVar("--muted")]];
  const series = model.over.flatMap((g) => parts.map(([key, label, color], i) => ({
    name: i === 0 && g.name ? g.name : t(label), type: "bar", stack: g.name || "all",
    barMaxWidth: 22, color, data: g[key],
  })));
  return base({
    legend: { top: 0, type: "scroll", textStyle: { fontSize: FONT }, itemWidth: 12, itemHeight: 8 },
    grid: { left: 8, right: 8, top: 26, bottom: 4, containLabel: true },
    xAxis: { type: "category", data: model.buckets.map((b) => bucketLabel(b, model.interval)),
             axisLabel: { fontSize: FONT } },
    yAxis: { type: "value", minInterval: 1, splitNumber: 3, axisLabel: { fontSize: FONT } },
    series,
  });
}

export function durationOption(model) {
  const names = [t("chart.avg"), "p50", "p95", "p99"];
  return base({
    grid: { left: 8, right: 8, top: 10, bottom: 4, containLabel: true },
    xAxis: { type: "category", data: names, axisLabel: { fontSize: FONT } },
    yAxis: msAxis,
    tooltip: { trigger: "axis", confine: true, valueFormatter: (v) => formatMs(v) },
    series: model.durations.map((d) => ({
      name: d.name || t("chart.duration"), type: "bar", barMaxWidth: 26, data: d.values,
    })),
  });
}

function horizontal(categories, series, valueAxis) {
  return base({
    grid: { left: 8, right: 24, top: series.length > 1 ? 24 : 8, bottom: 4, containLabel: true },
    legend: series.length > 1 ? { top: 0, textStyle: { fontSize: FONT } } : undefined,
    yAxis: { type: "category", inverse: true, data: categories,
             axisLabel: { fontSize: FONT, width: 96, overflow: "truncate" } },
    xAxis: valueAxis,
    series,
  });
}

export function slowestOption(model) {
  return horizontal(model.slowest.map((s) => s.label), [
    { name: "p95", type: "bar", barMaxWidth: 10, data: model.slowest.map((s) => s.p95) },
    { name: t("chart.avg"), type: "bar", barMaxWidth: 10, data: model.slowest.map((s) => s.avg) },
  ], msAxis);
}

export function errorsOption(model) {
  const err = cssVar("--err");
  return horizontal(model.errors.map((e) => e.type), [
    { name: t("chart.count"), type: "bar", barMaxWidth: 14, color: err,
      data: model.errors.map((e) => e.count),
      label: { show: true, position: "right", fontSize: FONT } },
  ], { type: "value", minInterval: 1, splitNumber: 3, axisLabel: { fontSize: FONT } });
}
