// GB/T 2260 province-level divisions, as the service names regions (schemas/actors.py
// PROVINCES); a test checks that both lists hold the same codes.

export const PROVINCES = {
  "110000": ["Beijing", "北京"],
  "120000": ["Tianjin", "天津"],
  "130000": ["Hebei", "河北"],
  "140000": ["Shanxi", "山西"],
  "150000": ["Inner Mongolia", "内蒙古"],
  "210000": ["Liaoning", "辽宁"],
  "220000": ["Jilin", "吉林"],
  "230000": ["Heilongjiang", "黑龙江"],
  "310000": ["Shanghai", "上海"],
  "320000": ["Jiangsu", "江苏"],
  "330000": ["Zhejiang", "浙江"],
  "340000": ["Anhui", "安徽"],
  "350000": ["Fujian", "福建"],
  "360000": ["Jiangxi", "江西"],
  "370000": ["Shandong", "山东"],
  "410000": ["Henan", "河南"],
  "420000": ["Hubei", "湖北"],
  "430000": ["Hunan", "湖南"],
  "440000": ["Guangdong", "广东"],
  "450000": ["Guangxi", "广西"],
  "460000": ["Hainan", "海南"],
  "500000": ["Chongqing", "重庆"],
  "510000": ["Sichuan", "四川"],
  "520000": ["Guizhou", "贵州"],
  "530000": ["Yunnan", "云南"],
  "540000": ["Xizang", "西藏"],
  "610000": ["Shaanxi", "陕西"],
  "620000": ["Gansu", "甘肃"],
  "630000": ["Qinghai", "青海"],
  "640000": ["Ningxia", "宁夏"],
  "650000": ["Xinjiang", "新疆"],
  "710000": ["Taiwan", "台湾"],
  "810000": ["Hong Kong", "香港"],
  "820000": ["Macao", "澳门"],
};

/** "Guangdong (广东)" for "440000"; the code itself if unknown; "not recorded" if empty. */
export function placeName(code) {
  if (!code) return "not recorded";
  const names = PROVINCES[code];
  return names ? `${names[0]} (${names[1]})` : String(code);
}
