/**
 * The Vant 4 components the app uses, with their styles: each view imports the components themselves, this
 * file brings in their CSS once (only what is used is shipped), and sizes Vant in rem so that the font-size
 * setting scales it too.
 */

import "vant/es/action-sheet/style/index";
import "vant/es/badge/style/index";
import "vant/es/button/style/index";
import "vant/es/cell/style/index";
import "vant/es/cell-group/style/index";
import "vant/es/dialog/style/index";
import "vant/es/empty/style/index";
import "vant/es/field/style/index";
import "vant/es/icon/style/index";
import "vant/es/image-preview/style/index";
import "vant/es/loading/style/index";
import "vant/es/nav-bar/style/index";
import "vant/es/popup/style/index";
import "vant/es/radio/style/index";
import "vant/es/radio-group/style/index";
import "vant/es/search/style/index";
import "vant/es/switch/style/index";
import "vant/es/tag/style/index";
import "vant/es/toast/style/index";
